/* fastprop's random numbers: one counter-based generator, splitmix64's finalizer, for dropout
 * masks and shuffles alike. Draw i of a key is mix(key + i * FP_RANDOM_STRIDE): a pure function
 * of (key, i), whatever the threads, and a loop over i vectorizes. Keys come from the model's
 * seed, the step count and the layer (fp_random_key). Included once by kernels.c. */
#ifndef FP_RANDOM_H
#define FP_RANDOM_H

#include <stdint.h>

#define FP_RANDOM_STRIDE 0x9E3779B97F4A7C15ull /* splitmix64's step: 2^64 / the golden ratio */

static inline uint64_t fp_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Draw i of `key`: 64 uniform bits. */
static inline uint64_t fp_random_draw(uint64_t key, uint64_t i)
{
    return fp_mix64(key + i * FP_RANDOM_STRIDE);
}

/* The key of (seed, step, layer): draws of different steps or layers are independent streams. */
static inline uint64_t fp_random_key(uint64_t seed, int64_t step, int layer)
{
    return fp_mix64(seed ^ ((uint64_t)step * 0xD1B54A32D192ED03ull) ^ ((uint64_t)layer << 56));
}

#endif
