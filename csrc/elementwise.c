/* Instantiates elementwise_impl.h for float (_f32) and double (_f64). */
#include <tgmath.h>
#include "fastprop.h"

#define REAL float
#define SFX f32
#include "elementwise_impl.h"
#undef REAL
#undef SFX

#define REAL double
#define SFX f64
#include "elementwise_impl.h"
#undef REAL
#undef SFX
