// cancel.c as C++: pthread_cleanup_push is the destructor form, and each thread holds an
// object whose destructor logs (GUARD): both run once as the cancel unwinds.
#include "cancel.c"
