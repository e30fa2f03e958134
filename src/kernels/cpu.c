/* What the CPU and the OS let the kernels use. A feature counts only when
 * the CPU has it (CPUID, through __builtin_cpu_supports) and the OS saves
 * the registers it needs across context switches (XCR0, read by XGETBV):
 * a kernel using zmm registers under an OS that does not save them would
 * fault, or worse, see another program's values. libgcc and compiler-rt
 * already clear the AVX and AVX-512 bits when XCR0 lacks their state; the
 * check here does not rely on that. */
#include <cpuid.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kernels/isa.h"

/* XCR0 state components: SSE (1), AVX (2), and AVX-512's opmask (5),
 * ZMM_Hi256 (6) and Hi16_ZMM (7). */
#define XCR0_YMM 0x06u
#define XCR0_ZMM 0xe6u

static unsigned xcr0(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    (void)hi;
    return lo;
}

static int os_saves(unsigned state) { return (xcr0() & state) == state; }

/* The features the kernel list names (isa.h), each with its check. */
typedef struct {
    const char *name;
    int (*has)(void);
} feature;

static int has_avx2(void) { return __builtin_cpu_supports("avx2") && os_saves(XCR0_YMM); }
static int has_fma(void) { return __builtin_cpu_supports("fma") && os_saves(XCR0_YMM); }
static int has_avx512f(void) { return __builtin_cpu_supports("avx512f") && os_saves(XCR0_ZMM); }
static int has_avx512vl(void) { return __builtin_cpu_supports("avx512vl") && os_saves(XCR0_ZMM); }
static int has_avx512bw(void) { return __builtin_cpu_supports("avx512bw") && os_saves(XCR0_ZMM); }
static int has_avx512dq(void) { return __builtin_cpu_supports("avx512dq") && os_saves(XCR0_ZMM); }

static const feature features[] = {
    {"avx2", has_avx2},         {"fma", has_fma},           {"avx512f", has_avx512f},
    {"avx512vl", has_avx512vl}, {"avx512bw", has_avx512bw}, {"avx512dq", has_avx512dq},
};
#define N_FEATURES (sizeof features / sizeof features[0])

/* Every feature of a space-separated list is there. */
static int has_all(const char *list)
{
    __builtin_cpu_init();
    for (const char *s = list; *s;) {
        size_t len = strcspn(s, " ");
        int found = 0;
        for (size_t f = 0; f < N_FEATURES && !found; f++)
            if (strlen(features[f].name) == len && !strncmp(features[f].name, s, len)) {
                if (!features[f].has()) return 0;
                found = 1;
            }
        if (!found) return 0; /* a name this file does not know: not usable */
        s += len;
        s += strspn(s, " ");
    }
    return 1;
}

int cpu_runs_scalar(void) { return 1; }

int cpu_runs_avx2(void) { return has_all(kernel_isa_named("avx2")->needs); }

int cpu_runs_avx512(void) { return has_all(kernel_isa_named("avx512")->needs); }

/* Both strings are filled once, by the first caller. */
static pthread_once_t texts_once = PTHREAD_ONCE_INIT;
static char name_text[49];
static char feature_text[128];

static void fill_texts(void)
{
    unsigned r[12];
    if ((unsigned)__get_cpuid_max(0x80000000u, NULL) >= 0x80000004u) {
        for (unsigned i = 0; i < 3; i++)
            __get_cpuid(0x80000002u + i, &r[4 * i], &r[4 * i + 1], &r[4 * i + 2], &r[4 * i + 3]);
        char raw[49];
        memcpy(raw, r, 48);
        raw[48] = '\0';
        /* The brand string is padded with spaces, sometimes in front. */
        const char *s = raw + strspn(raw, " ");
        size_t len = strlen(s);
        while (len > 0 && s[len - 1] == ' ') len--;
        memcpy(name_text, s, len);
        name_text[len] = '\0';
    }
    __builtin_cpu_init();
    size_t used = 0;
    for (size_t f = 0; f < N_FEATURES; f++)
        if (features[f].has())
            used += (size_t)snprintf(feature_text + used, sizeof feature_text - used, "%s%s",
                                     used ? " " : "", features[f].name);
    if (!used) snprintf(feature_text, sizeof feature_text, "none");
}

const char *cpu_name(void)
{
    pthread_once(&texts_once, fill_texts);
    return name_text;
}

const char *cpu_features(void)
{
    pthread_once(&texts_once, fill_texts);
    return feature_text;
}
