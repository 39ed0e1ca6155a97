/* A library with a __thread variable in the initial-exec TLS model (built with
 * -ftls-model=initial-exec, so it is marked DF_STATIC_TLS), for tls_dlopen: dlopened after
 * threads exist, glibc places it in the static TLS surplus of every thread and copies its
 * initial image into each. */
__thread int tls_ie_var = 1717;

int tls_ie_get(void) { return tls_ie_var; }
void tls_ie_set(int v) { tls_ie_var = v; }
int* tls_ie_addr(void) { return &tls_ie_var; }
