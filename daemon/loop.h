/* Signals and timers of the one event loop: SIGHUP reloads, SIGTERM/SIGINT drain and stop,
 * the watchdog pings systemd while the loop turns. */
#ifndef HERINNERD_LOOP_H
#define HERINNERD_LOOP_H

struct daemon;

int loop_initialise(struct daemon *d);
void loop_finalise(struct daemon *d);

#endif
