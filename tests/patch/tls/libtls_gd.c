/* A library with a __thread variable in the default (general-dynamic) TLS model, for
 * tls_dlopen: dlopened after threads exist, each thread gets its block through
 * __tls_get_addr. */
__thread int tls_gd_var = 4242;

int tls_gd_get(void) { return tls_gd_var; }
void tls_gd_set(int v) { tls_gd_var = v; }
int* tls_gd_addr(void) { return &tls_gd_var; }
