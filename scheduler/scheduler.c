#include "scheduler.h"
int sched_format_version(void) { return 0; }
