/* dlopen by the names whose meaning depends on the caller, while another thread lives: a
 * bare name found through the program's own DT_RUNPATH, and "$ORIGIN/...". glibc resolves
 * them against the calling object; under ringlet-run the dlopen stub must too, and the
 * library's initial-exec thread-local must read its initial value at once in the thread
 * that opened it (and in the one that did not). Built with the directory holding
 * libtls_ie.so and libtls_gd.so as its RUNPATH (tests/meson.build).
 * Prints the same lines natively and under ringlet-run. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <unistd.h>

static sem_t opened, checked;
static void* ie;  /* libtls_ie.so, opened by thread 1 by its bare name */

static void* opener(void* arg) {
  (void)arg;
  ie = dlopen("libtls_ie.so", RTLD_NOW);
  if (!ie) {
    printf("bare name: %s\n", dlerror());
    sem_post(&opened);
    return NULL;
  }
  int (*get)(void) = (int (*)(void))dlsym(ie, "tls_ie_get");
  void (*set)(int) = (void (*)(int))dlsym(ie, "tls_ie_set");
  printf("bare name: opened; the opener reads %d\n", get());
  set(1);
  sem_post(&opened);
  sem_wait(&checked);
  printf("bare name: the opener reads its own %d after the other thread wrote its own\n", get());
  void* gd = dlopen("$ORIGIN/libtls_gd.so", RTLD_NOW);
  if (!gd) {
    printf("$ORIGIN: %s\n", dlerror());
    return NULL;
  }
  int (*gd_get)(void) = (int (*)(void))dlsym(gd, "tls_gd_get");
  printf("$ORIGIN: opened; reads %d\n", gd_get ? gd_get() : -1);
  dlclose(gd);
  return NULL;
}

static void* other(void* arg) {
  (void)arg;
  sem_wait(&opened);
  if (ie) {
    int (*get)(void) = (int (*)(void))dlsym(ie, "tls_ie_get");
    void (*set)(int) = (void (*)(int))dlsym(ie, "tls_ie_set");
    printf("bare name: the other thread reads %d\n", get());
    set(2);
    usleep(1000);
    printf("bare name: the other thread reads its own %d\n", get());
  }
  sem_post(&checked);
  return NULL;
}

int main(void) {
  alarm(60);
  sem_init(&opened, 0, 0);
  sem_init(&checked, 0, 0);
  pthread_t a, b;
  pthread_create(&b, NULL, other, NULL);
  usleep(2000);
  pthread_create(&a, NULL, opener, NULL);
  pthread_join(a, NULL);
  pthread_join(b, NULL);
  if (ie) dlclose(ie);
  return 0;
}
