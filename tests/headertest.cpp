// The public header must compile alone as C++.
#include "attrgraph.h"
int ag_headertest_cxx();
int ag_headertest_cxx() { return AG_VERSION_CHECK(0, 1, 0) && AG_OK == 0; }
