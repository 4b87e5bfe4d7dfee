#include "codegen.h"
int cg_format_version(void) { return 0; }
