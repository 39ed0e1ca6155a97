/* Linked statically by the tests: ringlet-run must refuse it (no loader to preload into). */
#include <stdio.h>
int main(void) { puts("hello"); return 0; }
