/* tuner: see DESIGN.md. Not implemented yet (later issues); this header holds its place. */
#ifndef BRICK_TUNER_H
#define BRICK_TUNER_H
/* The module's version of the schedule/codegen/tuning format. */
int tune_format_version(void);
#endif
