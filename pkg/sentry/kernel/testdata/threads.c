/* pthreads: threads share memory and TLS is per thread; join waits. */
#include <pthread.h>
#include <stdio.h>
#include <unistd.h>

static __thread int mine;
static int total;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg) {
	mine = (int)(long)arg;
	for (int i = 0; i < 1000; i++) {
		pthread_mutex_lock(&mu);
		total += 1;
		pthread_mutex_unlock(&mu);
	}
	return (void *)(long)(mine * 10);
}

int main(void) {
	pthread_t th[4];
	for (long i = 0; i < 4; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)(i + 1)) != 0) return 1;
	long sum = 0;
	for (int i = 0; i < 4; i++) {
		void *ret;
		if (pthread_join(th[i], &ret) != 0) return 2;
		sum += (long)ret;
	}
	char buf[64];
	int n = snprintf(buf, sizeof buf, "total=%d sum=%ld main_tls=%d\n", total, sum, mine);
	write(1, buf, n);
	return 0;
}
