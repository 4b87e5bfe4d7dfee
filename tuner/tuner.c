#include "tuner.h"
int tune_format_version(void) { return 0; }
