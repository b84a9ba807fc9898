/* Configurations kept in the database (herinnerd.configs): the running one is saved there, and
 * the ones running escalations were frozen under are loaded back after a restart. */
#ifndef HERINNERD_CONFIG_STORE_H
#define HERINNERD_CONFIG_STORE_H

struct daemon;
struct config;

/* Save CFG's text under its SHA-256 (once). */
void config_store_save(struct daemon *d, const struct config *cfg);
/* Load the configs of active escalations that this process does not know yet. Queued on the
 * database connection, so it completes before claims queued after it. */
void config_store_load_frozen(struct daemon *d);

#endif
