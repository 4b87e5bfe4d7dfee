/* codegen: see DESIGN.md. Not implemented yet (later issues); this header holds its place. */
#ifndef BRICK_CODEGEN_H
#define BRICK_CODEGEN_H
/* The module's version of the schedule/codegen/tuning format. */
int cg_format_version(void);
#endif
