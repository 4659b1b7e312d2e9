/*
 * clockshift: moves one process's wall clock, as an NTP step or a dead RTC battery would.
 *
 * Loaded with LD_PRELOAD into the station daemon by bench/chaos.py. Only the wall clock moves
 * (CLOCK_REALTIME and its coarse variant, gettimeofday, time); CLOCK_MONOTONIC and every sleep
 * stay true, exactly as on a real machine whose clock is stepped. libfaketime cannot be used for
 * this: with the monotonic clock excluded it breaks Python 3.11's time.sleep
 * (clock_nanosleep with TIMER_ABSTIME; libfaketime issue #426).
 *
 * The offset lives in the file named by CLOCKSHIFT_FILE: 8 bytes, a signed 64-bit count of
 * nanoseconds in the machine's byte order. The file is mapped shared, so a harness that writes a
 * new offset moves the clock at once, with no system call per clock read.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

static clock_gettime_fn real_clock_gettime;
static volatile const int64_t *offset_ns;

__attribute__((constructor)) static void clockshift_init(void)
{
    real_clock_gettime = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
    const char *path = getenv("CLOCKSHIFT_FILE");
    if (path == NULL)
        return;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    void *map = mmap(NULL, sizeof(int64_t), PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (map != MAP_FAILED)
        offset_ns = (volatile const int64_t *)map;
}

static void shift(struct timespec *ts)
{
    if (offset_ns == NULL)
        return;
    int64_t ns = (int64_t)ts->tv_nsec + *offset_ns % 1000000000LL;
    ts->tv_sec += *offset_ns / 1000000000LL + ns / 1000000000LL;
    ns %= 1000000000LL;
    if (ns < 0) {
        ns += 1000000000LL;
        ts->tv_sec -= 1;
    }
    ts->tv_nsec = (long)ns;
}

int clock_gettime(clockid_t clock, struct timespec *ts)
{
    int result = real_clock_gettime(clock, ts);
    if (result == 0 && (clock == CLOCK_REALTIME || clock == CLOCK_REALTIME_COARSE))
        shift(ts);
    return result;
}

int gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    (void)tz;
    struct timespec ts;
    int result = clock_gettime(CLOCK_REALTIME, &ts);
    if (result == 0) {
        tv->tv_sec = ts.tv_sec;
        tv->tv_usec = ts.tv_nsec / 1000;
    }
    return result;
}

time_t time(time_t *out)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return (time_t)-1;
    if (out != NULL)
        *out = ts.tv_sec;
    return ts.tv_sec;
}
