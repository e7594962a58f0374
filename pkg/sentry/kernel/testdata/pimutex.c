// Priority-inheritance robust mutexes (FUTEX_LOCK_PI/UNLOCK_PI and the
// robust list) under contention, and a robust owner that dies.
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t m;
static long counter;

static void *run(void *a) {
  for (int i = 0; i < 20000; i++) {
    pthread_mutex_lock(&m);
    counter++;
    pthread_mutex_unlock(&m);
  }
  return a;
}

static void *lock_and_die(void *a) {
  pthread_mutex_lock(&m);
  return a;
}

int main(void) {
  pthread_mutexattr_t at;
  pthread_mutexattr_init(&at);
  pthread_mutexattr_setprotocol(&at, PTHREAD_PRIO_INHERIT);
  pthread_mutexattr_setrobust(&at, PTHREAD_MUTEX_ROBUST);
  pthread_mutex_init(&m, &at);
  pthread_t th[4];
  for (int i = 0; i < 4; i++) pthread_create(&th[i], 0, run, 0);
  for (int i = 0; i < 4; i++) pthread_join(th[i], 0);
  pthread_t d;
  pthread_create(&d, 0, lock_and_die, 0);
  pthread_join(d, 0);
  int r = pthread_mutex_lock(&m);
  printf("pi counter=%ld ownerdead=%d\n", counter, r == EOWNERDEAD);
  return 0;
}
