// MULTIVERSION: clones of a function for x86-64-v4 (AVX-512), v3 (AVX2 + FMA) and the baseline,
// picked at load time, so loops the compiler vectorizes run at the CPU's width without a build flag.
#ifndef HEADTUNE_MULTIVERSION_H
#define HEADTUNE_MULTIVERSION_H

#if defined(__x86_64__) && defined(__has_attribute)
#if __has_attribute(target_clones)
#define MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif
#endif
#ifndef MULTIVERSION
#define MULTIVERSION
#endif

#endif
