/* The tuning commands of the `brick` driver (tune_cmd.c). */
#ifndef BRICK_TOOLS_TUNE_CMD_H
#define BRICK_TOOLS_TUNE_CMD_H

#include "brick/brick.h"

/* `brick tune ...` and the worker `brick __measure ...`; "argv" starts at the command name. */
int brick_cmd_tune(int argc, char **argv);
int brick_cmd_measure(int argc, char **argv);

#endif
