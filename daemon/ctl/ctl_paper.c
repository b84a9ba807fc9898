/* herinnerctl paper handover: placeholder until the paper channel lands. */
#include <stdio.h>

#include "ctl.h"

int ctl_paper_handover(const struct ctl *ctl)
{
    (void)ctl;
    fprintf(stderr, "herinnerctl: the paper channel is not built yet\n");
    return 1;
}
