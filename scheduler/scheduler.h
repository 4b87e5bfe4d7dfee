/* scheduler: see DESIGN.md. Not implemented yet (later issues); this header holds its place. */
#ifndef BRICK_SCHEDULER_H
#define BRICK_SCHEDULER_H
/* The module's version of the schedule/codegen/tuning format. */
int sched_format_version(void);
#endif
