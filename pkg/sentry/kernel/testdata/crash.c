/* Dies of an unhandled SIGSEGV. */
int main(void) {
	*(volatile int *)0x8 = 1;
	return 0;
}
