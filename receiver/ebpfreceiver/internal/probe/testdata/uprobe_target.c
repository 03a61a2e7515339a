/*
 * The uprobe tests' target: calls k8ssec_probe_me(42, "hello uprobe", -7,
 * <a 200-byte string>) and k8ssec_name(argc) argv[1] times (default 1), then
 * prints a sum so that nothing is optimized away. Built by the tests with
 * the machine's C compiler; the functions keep their symbols (no strip).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((noinline)) long k8ssec_probe_me(long n, const char *s, long m, const char *t)
{
	__asm__ volatile("" ::: "memory");
	return n + m + (long)strlen(s) + (long)strlen(t);
}

__attribute__((noinline)) const char *k8ssec_name(int i)
{
	static char buf[32];
	snprintf(buf, sizeof(buf), "name-%d", i);
	__asm__ volatile("" ::: "memory");
	return buf;
}

int main(int argc, char **argv)
{
	long count = argc > 1 ? atol(argv[1]) : 1;
	char longstr[201];
	memset(longstr, 'x', 200);
	longstr[200] = 0;
	long sum = 0;
	for (long i = 0; i < count; i++) {
		sum += k8ssec_probe_me(42, "hello uprobe", -7, longstr);
		sum += (long)strlen(k8ssec_name(argc));
	}
	printf("%ld\n", sum);
	return 0;
}
