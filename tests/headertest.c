/* The public header must compile alone as strict C99 (-pedantic -Werror). */
#include "attrgraph.h"
int ag_headertest_c(void);
int ag_headertest_c(void) { return AG_VERSION_CHECK(0, 1, 0) && AG_OK == 0; }
