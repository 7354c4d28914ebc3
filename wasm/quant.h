/* Internal to the tensor code (quant.c, kernels.c): ggml block layouts, quantized activations, SIMD helpers. */
#ifndef LLM_QUANT_H
#define LLM_QUANT_H

#include <stdint.h>
#include <string.h>

#include "llm.h"

#ifdef __wasm_simd128__
#include <wasm_simd128.h>
#endif

/* ---- block layouts ------------------------------------------------------------------------------------- */
#define QK8_0 32
#define QK4_0 32
#define QK_K 256

typedef struct { uint16_t d; int8_t qs[QK8_0]; } block_q8_0;                                 /* 34 bytes */
typedef struct { uint16_t d; uint8_t qs[QK4_0 / 2]; } block_q4_0;                            /* 18 bytes */
typedef struct { uint16_t d, dmin; uint8_t scales[12]; uint8_t qs[QK_K / 2]; } block_q4_K;   /* 144 bytes */
typedef struct { uint8_t ql[QK_K / 2]; uint8_t qh[QK_K / 4]; int8_t scales[QK_K / 16]; uint16_t d; } block_q6_K;

_Static_assert(sizeof(block_q8_0) == 34, "q8_0 layout");
_Static_assert(sizeof(block_q4_0) == 18, "q4_0 layout");
_Static_assert(sizeof(block_q4_K) == 144, "q4_K layout");
_Static_assert(sizeof(block_q6_K) == 210, "q6_K layout");

/* Row r of a Q8_0 matrix: its first block, and *stride = blocks from one of its blocks to the next (the group
 * size when rows are stored block-interleaved in groups). */
static inline const block_q8_0 *q8_row(const mat_t *w, uint32_t r, uint32_t *stride) {
    const uint8_t *base = (const uint8_t *)w->data;
    if (w->q8_group > 1) {
        uint32_t g = w->q8_group;
        *stride = g;
        return (const block_q8_0 *)(base + (size_t)(r - r % g) * w->row_bytes) + r % g;
    }
    *stride = 1;
    return (const block_q8_0 *)(base + (size_t)r * w->row_bytes);
}

/* ---- half floats: a 64 Ki-entry table, filled on first use -------------------------------------------- */
extern float h2f_table[65536];
extern int h2f_ready;
void h2f_init(void);
#define H2F(h) h2f_table[(h)]

/* Q4_K packs eight 6-bit scales and eight 6-bit mins into 12 bytes. */
static inline void q4k_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* ---- quantized activations ------------------------------------------------------------------------------ */
typedef struct {
    const float *f;  /* F32 / F16 weights */
    int8_t *qs;
    int16_t *qs16; /* the same values widened once per token, so kernels only widen the weights */
    float *d;
    int16_t *bsums;
} act_t;

void quantize_q8_0(const float *x, uint32_t n, int8_t *qs, float *d);
void quantize_q8_K(const float *x, uint32_t n, int8_t *qs, float *d, int16_t *bsums);

/* ---- SIMD helpers ------------------------------------------------------------------------------------------ */
#ifdef __wasm_simd128__
/* a*b + c: fused with relaxed SIMD (wasmtime runs it deterministically as an FMA), else multiply then add */
#ifdef __wasm_relaxed_simd__
#define MADD(a, b, c) wasm_f32x4_relaxed_madd((a), (b), (c))
#else
#define MADD(a, b, c) wasm_f32x4_add(wasm_f32x4_mul((a), (b)), (c))
#endif
static inline float hsum4(v128_t v) {
    return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
           (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}
static inline int32_t hsum4i(v128_t v) {
    return wasm_i32x4_extract_lane(v, 0) + wasm_i32x4_extract_lane(v, 1) + wasm_i32x4_extract_lane(v, 2) +
           wasm_i32x4_extract_lane(v, 3);
}
/* 16 int8 weights against 16 pre-widened int16 activations -> 4 x i32 partial sums */
static inline v128_t dot_w8_x16(v128_t w, const int16_t *x) {
    return wasm_i32x4_add(wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(w), wasm_v128_load(x)),
                          wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(w), wasm_v128_load(x + 8)));
}
/* Loads at a constant offset from a pointer, written as wasm memarg offsets: clang otherwise emits an i32.add
 * per load (it cannot prove the add does not wrap), which Cranelift turns into an extra instruction. */
#define LOAD8X8_AT(p, off) ({ v128_t r_; __asm__("local.get %1\n\ti16x8.load8x8_s " #off ":p2align=0\n\tlocal.set %0" : "=r"(r_) : "r"(p)); r_; })
#define LOAD_AT(p, off) ({ v128_t r_; __asm__("local.get %1\n\tv128.load " #off ":p2align=0\n\tlocal.set %0" : "=r"(r_) : "r"(p)); r_; })

/* One Q8_0 block (qs at byte offset 2) against 32 int16 activations: sign-extending loads, no widening step */
static inline v128_t dot_q8_block(const void *blk, const int16_t *x) {
    v128_t s = wasm_i32x4_dot_i16x8(LOAD8X8_AT(blk, 2), LOAD_AT(x, 0));
    s = wasm_i32x4_add(s, wasm_i32x4_dot_i16x8(LOAD8X8_AT(blk, 10), LOAD_AT(x, 16)));
    s = wasm_i32x4_add(s, wasm_i32x4_dot_i16x8(LOAD8X8_AT(blk, 18), LOAD_AT(x, 32)));
    return wasm_i32x4_add(s, wasm_i32x4_dot_i16x8(LOAD8X8_AT(blk, 26), LOAD_AT(x, 48)));
}
/* int8 x int8 dot of 16 lanes, accumulated into 4 x i32 */
static inline v128_t dot_i8x16(v128_t a, v128_t b) {
    v128_t lo = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(a), wasm_i16x8_extend_low_i8x16(b));
    v128_t hi = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(a), wasm_i16x8_extend_high_i8x16(b));
    return wasm_i32x4_add(lo, hi);
}
#endif

#endif
