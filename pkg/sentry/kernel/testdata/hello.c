/* Writes "hello\n" with write(2) and exits 7. */
#include <unistd.h>

int main(void) {
	write(1, "hello\n", 6);
	return 7;
}
