/* Tensor kernels: half floats, the ggml block formats (F32, F16, Q4_0, Q8_0, Q4_K, Q6_K), activation
 * quantization and matrix-vector products. Numerics follow ggml's CPU backend: activations are rounded to F16
 * for F16 weights, quantized to Q8_0 blocks for Q4_0/Q8_0 weights and to Q8_K blocks for the K-quants, and the
 * integer block sums are exact, so results agree with llama.cpp up to float summation order. */
#include <math.h>
#include <stdlib.h>
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

int type_supported(uint32_t t) {
    return t == GGML_F32 || t == GGML_F16 || t == GGML_Q4_0 || t == GGML_Q8_0 || t == GGML_Q4_K || t == GGML_Q6_K;
}

int type_block_size(uint32_t t) {
    switch (t) {
    case GGML_Q4_0: case GGML_Q8_0: return 32;
    case GGML_Q4_K: case GGML_Q6_K: return 256;
    default: return 1;
    }
}

size_t type_block_bytes(uint32_t t) {
    switch (t) {
    case GGML_F32: return 4;
    case GGML_F16: return 2;
    case GGML_Q4_0: return sizeof(block_q4_0);
    case GGML_Q8_0: return sizeof(block_q8_0);
    case GGML_Q4_K: return sizeof(block_q4_K);
    case GGML_Q6_K: return sizeof(block_q6_K);
    default: return 0;
    }
}

/* ---- half floats ------------------------------------------------------------------------------------- */
static float h2f_table[65536];
static int h2f_ready;

static float h2f_compute(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1f, mant = h & 0x3ffu, bits;
    if (e == 0) {
        float f = (float)mant * (1.0f / 16777216.0f);
        memcpy(&bits, &f, 4);
        bits |= sign;
    } else if (e == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((e + 112) << 23) | (mant << 13);
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

static void h2f_init(void) {
    if (h2f_ready) return;
    for (uint32_t i = 0; i < 65536; i++) h2f_table[i] = h2f_compute((uint16_t)i);
    h2f_ready = 1;
}

float fp16_to_f32(uint16_t h) {
    if (!h2f_ready) h2f_init();
    return h2f_table[h];
}

#define H2F(h) h2f_table[(h)]

/* Round to nearest even, like the hardware conversion ggml uses. */
uint16_t f32_to_fp16(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    uint32_t ax = x & 0x7fffffffu;
    if (ax > 0x7f800000u) return sign | 0x7e00u;
    if (ax >= 0x477ff000u) return sign | 0x7c00u; /* >= 65520 rounds to infinity */
    int e = (int)(ax >> 23) - 127;
    uint32_t mant = ax & 0x7fffffu;
    if (e >= -14) {
        uint32_t half = ((uint32_t)(e + 15) << 10) | (mant >> 13);
        uint32_t rem = mant & 0x1fffu;
        if (rem > 0x1000u || (rem == 0x1000u && (half & 1))) half++;
        return sign | (uint16_t)half;
    }
    int shift = -14 - e + 13;
    if (shift > 24) return sign;
    uint32_t m = mant | 0x800000u;
    uint32_t half = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1))) half++;
    return sign | (uint16_t)half;
}

static inline float round_half_even(float v) { return nearbyintf(v); }

/* ---- dequantization (embedding rows, reference) --------------------------------------------------- */
static void q4k_scale_min(int j, const uint8_t *q, uint8_t *sc, uint8_t *mn) {
    if (j < 4) {
        *sc = q[j] & 63;
        *mn = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *mn = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

void dequant_row(const mat_t *m, uint32_t row, float *y) {
    if (!h2f_ready) h2f_init();
    const uint8_t *p = (const uint8_t *)m->data + (size_t)row * m->row_bytes;
    uint32_t n = m->ne0;
    switch (m->type) {
    case GGML_F32: memcpy(y, p, n * 4); break;
    case GGML_F16: {
        for (uint32_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            y[i] = H2F(h);
        }
    } break;
    case GGML_Q8_0: {
        const block_q8_0 *b = (const block_q8_0 *)p;
        for (uint32_t i = 0; i < n / QK8_0; i++) {
            float d = H2F(b[i].d);
            for (int j = 0; j < QK8_0; j++) y[i * QK8_0 + j] = d * b[i].qs[j];
        }
    } break;
    case GGML_Q4_0: {
        const block_q4_0 *b = (const block_q4_0 *)p;
        for (uint32_t i = 0; i < n / QK4_0; i++) {
            float d = H2F(b[i].d);
            for (int j = 0; j < QK4_0 / 2; j++) {
                y[i * QK4_0 + j] = ((b[i].qs[j] & 0xF) - 8) * d;
                y[i * QK4_0 + j + 16] = ((b[i].qs[j] >> 4) - 8) * d;
            }
        }
    } break;
    case GGML_Q4_K: {
        const block_q4_K *b = (const block_q4_K *)p;
        for (uint32_t i = 0; i < n / QK_K; i++) {
            float d = H2F(b[i].d), dmin = H2F(b[i].dmin);
            const uint8_t *q = b[i].qs;
            int is = 0;
            for (int j = 0; j < QK_K; j += 64) {
                uint8_t sc, mn;
                q4k_scale_min(is, b[i].scales, &sc, &mn);
                float d1 = d * sc, m1 = dmin * mn;
                q4k_scale_min(is + 1, b[i].scales, &sc, &mn);
                float d2 = d * sc, m2 = dmin * mn;
                for (int l = 0; l < 32; l++) *y++ = d1 * (q[l] & 0xF) - m1;
                for (int l = 0; l < 32; l++) *y++ = d2 * (q[l] >> 4) - m2;
                q += 32;
                is += 2;
            }
        }
    } break;
    case GGML_Q6_K: {
        const block_q6_K *b = (const block_q6_K *)p;
        for (uint32_t i = 0; i < n / QK_K; i++) {
            float d = H2F(b[i].d);
            const uint8_t *ql = b[i].ql, *qh = b[i].qh;
            const int8_t *sc = b[i].scales;
            for (int c = 0; c < QK_K; c += 128) {
                for (int l = 0; l < 32; l++) {
                    int is = l / 16;
                    int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    y[l] = d * sc[is + 0] * q1;
                    y[l + 32] = d * sc[is + 2] * q2;
                    y[l + 64] = d * sc[is + 4] * q3;
                    y[l + 96] = d * sc[is + 6] * q4;
                }
                y += 128;
                ql += 64;
                qh += 32;
                sc += 8;
            }
        }
    } break;
    }
}

/* ---- activation quantization ------------------------------------------------------------------------ */
/* Quantized activations of one token: int8 values with per-block scales (already rounded to what ggml
 * stores) and, for Q8_K, per-16 sums. For F16 weights the values are rounded to F16 and kept as floats. */
typedef struct {
    const float *f;  /* F32 / F16 weights */
    int8_t *qs;
    int16_t *qs16; /* the same values widened once per token, so kernels only widen the weights */
    float *d;
    int16_t *bsums;
} act_t;

static void quantize_q8_0(const float *x, uint32_t n, int8_t *qs, float *d) {
    for (uint32_t b = 0; b < n / QK8_0; b++) {
        const float *xb = x + b * QK8_0;
        float amax = 0.0f;
        for (int j = 0; j < QK8_0; j++) {
            float a = fabsf(xb[j]);
            amax = a > amax ? a : amax;
        }
        float dd = amax / 127.f;
        float id = amax != 0.0f ? 127.f / amax : 0.0f;
        d[b] = fp16_to_f32(f32_to_fp16(dd));
        for (int j = 0; j < QK8_0; j++) qs[b * QK8_0 + j] = (int8_t)round_half_even(xb[j] * id);
    }
}

static void quantize_q8_K(const float *x, uint32_t n, int8_t *qs, float *d, int16_t *bsums) {
    for (uint32_t b = 0; b < n / QK_K; b++) {
        const float *xb = x + b * QK_K;
        float amax = 0.0f, maxv = 0.0f;
        for (int j = 0; j < QK_K; j++) {
            float a = fabsf(xb[j]);
            if (a > amax) {
                amax = a;
                maxv = xb[j];
            }
        }
        int8_t *q = qs + b * QK_K;
        if (amax == 0.0f) {
            d[b] = 0.0f;
            memset(q, 0, QK_K);
        } else {
            float iscale = -127.f / maxv;
            for (int j = 0; j < QK_K; j++) {
                int v = (int)round_half_even(iscale * xb[j]);
                q[j] = (int8_t)(v > 127 ? 127 : v);
            }
            d[b] = 1.0f / iscale;
        }
        for (int g = 0; g < QK_K / 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += q[g * 16 + j];
            bsums[b * (QK_K / 16) + g] = (int16_t)s;
        }
    }
}

size_t matmul_scratch_bytes(uint32_t ne0, int T) {
    size_t per = (size_t)ne0 * 4 + ne0 + ne0 * 2 + (ne0 / 32 + 1) * 4 + (ne0 / 16 + 1) * 2 + 96;
    return per * (size_t)T + 64;
}

/* ---- dot-product kernels: NR rows of W against one activation vector ------------------------------------ */
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

float dot_f32(const float *a, const float *b, int n) {
#ifdef __wasm_simd128__
    v128_t s0 = wasm_f32x4_splat(0), s1 = s0;
    int i = 0;
    for (; i + 8 <= n; i += 8) {
        s0 = MADD(wasm_v128_load(a + i), wasm_v128_load(b + i), s0);
        s1 = MADD(wasm_v128_load(a + i + 4), wasm_v128_load(b + i + 4), s1);
    }
    float s = hsum4(wasm_f32x4_add(s0, s1));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
#else
    float s = 0.0f;
    for (int i = 0; i < n; i++) s += a[i] * b[i];
    return s;
#endif
}

#ifdef __wasm_simd128__
/* 4 halves (in the low 64 bits) to floats; exact for normal and subnormal values */
static inline v128_t h4_to_f32(v128_t h) {
    v128_t u = wasm_u32x4_extend_low_u16x8(h);
    v128_t f = wasm_f32x4_mul(wasm_i32x4_shl(wasm_v128_and(u, wasm_i32x4_splat(0x7fff)), 13), wasm_f32x4_splat(0x1p112f));
    return wasm_v128_or(f, wasm_i32x4_shl(wasm_v128_and(u, wasm_i32x4_splat(0x8000)), 16));
}
#endif

/* Dot of floats with an F16 row (the F16 KV cache). */
float dot_f32_f16(const float *a, const uint16_t *b, int n) {
    if (!h2f_ready) h2f_init();
    int i = 0;
    float s = 0.0f;
#ifdef __wasm_simd128__
    v128_t acc = wasm_f32x4_splat(0);
    for (; i + 4 <= n; i += 4) acc = MADD(wasm_v128_load(a + i), h4_to_f32(wasm_v128_load64_zero(b + i)), acc);
    s = hsum4(acc);
#endif
    for (; i < n; i++) s += a[i] * H2F(b[i]);
    return s;
}

void axpy_f16(float *y, float a, const uint16_t *x, int n) {
    if (!h2f_ready) h2f_init();
    int i = 0;
#ifdef __wasm_simd128__
    v128_t va = wasm_f32x4_splat(a);
    for (; i + 4 <= n; i += 4)
        wasm_v128_store(y + i, MADD(va, h4_to_f32(wasm_v128_load64_zero(x + i)), wasm_v128_load(y + i)));
#endif
    for (; i < n; i++) y[i] += a * H2F(x[i]);
}

void axpy_f32(float *y, float a, const float *x, int n) {
    int i = 0;
#ifdef __wasm_simd128__
    v128_t va = wasm_f32x4_splat(a);
    for (; i + 4 <= n; i += 4)
        wasm_v128_store(y + i, MADD(va, wasm_v128_load(x + i), wasm_v128_load(y + i)));
#endif
    for (; i < n; i++) y[i] += a * x[i];
}

/* F32 weights: one row per pass with four accumulators (Cranelift keeps this loop in registers; several
 * rows per pass spill and run at half the speed). */
static void rows_f32(const mat_t *w, uint32_t r0, int nr, const act_t *a, float *out) {
    const float *x = a->f;
    uint32_t n = w->ne0;
#if defined(__wasm_simd128__)
    for (int r = 0; r < nr; r++) {
        const float *W = (const float *)((const uint8_t *)w->data + (size_t)(r0 + r) * w->row_bytes);
        v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
        uint32_t i = 0;
        for (; i + 16 <= n; i += 16) {
            a0 = MADD(wasm_v128_load(W + i), wasm_v128_load(x + i), a0);
            a1 = MADD(wasm_v128_load(W + i + 4), wasm_v128_load(x + i + 4), a1);
            a2 = MADD(wasm_v128_load(W + i + 8), wasm_v128_load(x + i + 8), a2);
            a3 = MADD(wasm_v128_load(W + i + 12), wasm_v128_load(x + i + 12), a3);
        }
        float s = hsum4(wasm_f32x4_add(wasm_f32x4_add(a0, a1), wasm_f32x4_add(a2, a3)));
        for (; i < n; i++) s += W[i] * x[i];
        out[r] = s;
    }
#else
    for (int r = 0; r < nr; r++) {
        const float *W = (const float *)((const uint8_t *)w->data + (size_t)(r0 + r) * w->row_bytes);
        float s = 0.0f;
        for (uint32_t j = 0; j < n; j++) s += W[j] * x[j];
        out[r] = s;
    }
#endif
}

/* F16 weights against F16-rounded activations (held as floats). */
static void rows_f16(const mat_t *w, uint32_t r0, int nr, const act_t *a, float *out) {
    const float *x = a->f;
    uint32_t n = w->ne0;
    for (int r = 0; r < nr; r++) {
        const uint16_t *W = (const uint16_t *)((const uint8_t *)w->data + (size_t)(r0 + r) * w->row_bytes);
#ifdef __wasm_simd128__
        v128_t acc0 = wasm_f32x4_splat(0), acc1 = acc0;
        const v128_t mag = wasm_i32x4_splat(0x7fff), sgn = wasm_i32x4_splat(0x8000), scale = wasm_f32x4_splat(0x1p112f);
        uint32_t i = 0;
        for (; i + 8 <= n; i += 8) {
            v128_t h = wasm_v128_load(W + i);
            v128_t lo = wasm_u32x4_extend_low_u16x8(h), hi = wasm_u32x4_extend_high_u16x8(h);
            v128_t flo = wasm_f32x4_mul(wasm_i32x4_shl(wasm_v128_and(lo, mag), 13), scale);
            v128_t fhi = wasm_f32x4_mul(wasm_i32x4_shl(wasm_v128_and(hi, mag), 13), scale);
            flo = wasm_v128_or(flo, wasm_i32x4_shl(wasm_v128_and(lo, sgn), 16));
            fhi = wasm_v128_or(fhi, wasm_i32x4_shl(wasm_v128_and(hi, sgn), 16));
            acc0 = MADD(flo, wasm_v128_load(x + i), acc0);
            acc1 = MADD(fhi, wasm_v128_load(x + i + 4), acc1);
        }
        float s = hsum4(wasm_f32x4_add(acc0, acc1));
        for (; i < n; i++) s += H2F(W[i]) * x[i];
        out[r] = s;
#else
        float s = 0.0f;
        for (uint32_t i = 0; i < n; i++) s += H2F(W[i]) * x[i];
        out[r] = s;
#endif
    }
}

static void rows_q8_0(const mat_t *w, uint32_t r0, int nr, const act_t *a, float *out) {
    uint32_t nb = w->ne0 / QK8_0;
    for (int r = 0; r < nr; r++) {
        const block_q8_0 *b = (const block_q8_0 *)((const uint8_t *)w->data + (size_t)(r0 + r) * w->row_bytes);
#ifdef __wasm_simd128__
        v128_t acc = wasm_f32x4_splat(0), acc2 = acc;
        const int16_t *xs = a->qs16; /* locals: a->... would be reloaded from memory every block */
        const float *xd = a->d;
#pragma clang loop unroll(disable)
        for (uint32_t i = 0; i < nb; i++) {
            v128_t s0 = dot_q8_block(&b[i], xs + i * QK8_0);
            acc = MADD(wasm_f32x4_convert_i32x4(s0), wasm_f32x4_splat(H2F(b[i].d) * xd[i]), acc);
        }
        out[r] = hsum4(wasm_f32x4_add(acc, acc2));
#else
        float s = 0.0f;
        for (uint32_t i = 0; i < nb; i++) {
            int sumi = 0;
            for (int j = 0; j < QK8_0; j++) sumi += b[i].qs[j] * a->qs[i * QK8_0 + j];
            s += (H2F(b[i].d) * a->d[i]) * (float)sumi;
        }
        out[r] = s;
#endif
    }
}

static void rows_q4_0(const mat_t *w, uint32_t r0, int nr, const act_t *a, float *out) {
    uint32_t nb = w->ne0 / QK4_0;
    for (int r = 0; r < nr; r++) {
        const block_q4_0 *b = (const block_q4_0 *)((const uint8_t *)w->data + (size_t)(r0 + r) * w->row_bytes);
#ifdef __wasm_simd128__
        v128_t acc = wasm_f32x4_splat(0);
        const v128_t m4 = wasm_i8x16_splat(0xF), e8 = wasm_i8x16_splat(8);
        const int16_t *xs = a->qs16;
        const float *xd = a->d;
#pragma clang loop unroll(disable)
        for (uint32_t i = 0; i < nb; i++) {
            const int16_t *xq = xs + i * QK4_0;
            v128_t q = LOAD_AT(&b[i], 2);
            v128_t lo = wasm_i8x16_sub(wasm_v128_and(q, m4), e8);
            v128_t hi = wasm_i8x16_sub(wasm_u8x16_shr(q, 4), e8);
            v128_t s = wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(lo), LOAD_AT(xq, 0));
            s = wasm_i32x4_add(s, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(lo), LOAD_AT(xq, 16)));
            s = wasm_i32x4_add(s, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_low_i8x16(hi), LOAD_AT(xq, 32)));
            s = wasm_i32x4_add(s, wasm_i32x4_dot_i16x8(wasm_i16x8_extend_high_i8x16(hi), LOAD_AT(xq, 48)));
            acc = MADD(wasm_f32x4_convert_i32x4(s), wasm_f32x4_splat(H2F(b[i].d) * xd[i]), acc);
        }
        out[r] = hsum4(acc);
#else
        float s = 0.0f;
        for (uint32_t i = 0; i < nb; i++) {
            int sumi = 0;
            for (int j = 0; j < 16; j++) {
                sumi += ((b[i].qs[j] & 0xF) - 8) * a->qs[i * QK4_0 + j];
                sumi += ((b[i].qs[j] >> 4) - 8) * a->qs[i * QK4_0 + j + 16];
            }
            s += (H2F(b[i].d) * a->d[i]) * (float)sumi;
        }
        out[r] = s;
#endif
    }
}

static void rows_q4_K(const mat_t *w, uint32_t r0, int nr, const act_t *a, float *out) {
    uint32_t nb = w->ne0 / QK_K;
    for (int r = 0; r < nr; r++) {
        const block_q4_K *b = (const block_q4_K *)((const uint8_t *)w->data + (size_t)(r0 + r) * w->row_bytes);
        float sumf = 0.0f;
        for (uint32_t i = 0; i < nb; i++) {
            const int8_t *xq = a->qs + i * QK_K; /* scalar path */
            (void)xq;
            const int16_t *bs = a->bsums + i * (QK_K / 16);
            uint8_t sc[8], mn[8];
            {
                uint32_t w0, w1, w2, t;
                memcpy(&w0, b[i].scales, 4);
                memcpy(&w1, b[i].scales + 4, 4);
                memcpy(&w2, b[i].scales + 8, 4);
                t = w0 & 0x3f3f3f3fu; memcpy(sc, &t, 4);
                t = w1 & 0x3f3f3f3fu; memcpy(mn, &t, 4);
                t = (w2 & 0x0f0f0f0fu) | (((w0 >> 6) & 0x03030303u) << 4); memcpy(sc + 4, &t, 4);
                t = ((w2 >> 4) & 0x0f0f0f0fu) | (((w1 >> 6) & 0x03030303u) << 4); memcpy(mn + 4, &t, 4);
            }
            int32_t summs = 0;
            for (int j = 0; j < 8; j++) summs += mn[j] * (bs[2 * j] + bs[2 * j + 1]);
            int32_t sumi = 0;
            const uint8_t *q = b[i].qs;
#ifdef __wasm_simd128__
            const v128_t m4 = wasm_i8x16_splat(0xF);
            v128_t acc = wasm_i32x4_splat(0);
            const int16_t *x16 = a->qs16 + i * QK_K;
#pragma clang loop unroll(disable)
            for (int j = 0; j < 4; j++, q += 32, x16 += 64) {
                v128_t q0 = LOAD_AT(q, 0), q1 = LOAD_AT(q, 16);
                v128_t l0 = wasm_v128_and(q0, m4), l1 = wasm_v128_and(q1, m4);
                v128_t s_lo = wasm_i32x4_dot_i16x8(wasm_u16x8_extend_low_u8x16(l0), LOAD_AT(x16, 0));
                s_lo = wasm_i32x4_add(s_lo, wasm_i32x4_dot_i16x8(wasm_u16x8_extend_high_u8x16(l0), LOAD_AT(x16, 16)));
                s_lo = wasm_i32x4_add(s_lo, wasm_i32x4_dot_i16x8(wasm_u16x8_extend_low_u8x16(l1), LOAD_AT(x16, 32)));
                s_lo = wasm_i32x4_add(s_lo, wasm_i32x4_dot_i16x8(wasm_u16x8_extend_high_u8x16(l1), LOAD_AT(x16, 48)));
                acc = wasm_i32x4_add(acc, wasm_i32x4_mul(s_lo, wasm_i32x4_splat(sc[2 * j])));
                v128_t h0 = wasm_u8x16_shr(q0, 4), h1 = wasm_u8x16_shr(q1, 4);
                v128_t s_hi = wasm_i32x4_dot_i16x8(wasm_u16x8_extend_low_u8x16(h0), LOAD_AT(x16, 64));
                s_hi = wasm_i32x4_add(s_hi, wasm_i32x4_dot_i16x8(wasm_u16x8_extend_high_u8x16(h0), LOAD_AT(x16, 80)));
                s_hi = wasm_i32x4_add(s_hi, wasm_i32x4_dot_i16x8(wasm_u16x8_extend_low_u8x16(h1), LOAD_AT(x16, 96)));
                s_hi = wasm_i32x4_add(s_hi, wasm_i32x4_dot_i16x8(wasm_u16x8_extend_high_u8x16(h1), LOAD_AT(x16, 112)));
                acc = wasm_i32x4_add(acc, wasm_i32x4_mul(s_hi, wasm_i32x4_splat(sc[2 * j + 1])));
            }
            sumi = hsum4i(acc);
#else
            for (int j = 0; j < 4; j++) {
                int s_lo = 0, s_hi = 0;
                for (int l = 0; l < 32; l++) {
                    s_lo += (q[32 * j + l] & 0xF) * xq[64 * j + l];
                    s_hi += (q[32 * j + l] >> 4) * xq[64 * j + 32 + l];
                }
                sumi += sc[2 * j] * s_lo + sc[2 * j + 1] * s_hi;
            }
#endif
            float d = a->d[i] * H2F(b[i].d);
            float dmin = a->d[i] * H2F(b[i].dmin);
            sumf += d * (float)sumi - dmin * (float)summs;
        }
        out[r] = sumf;
    }
}

static void rows_q6_K(const mat_t *w, uint32_t r0, int nr, const act_t *a, float *out) {
    uint32_t nb = w->ne0 / QK_K;
    for (int r = 0; r < nr; r++) {
        const block_q6_K *b = (const block_q6_K *)((const uint8_t *)w->data + (size_t)(r0 + r) * w->row_bytes);
        float sumf = 0.0f;
        for (uint32_t i = 0; i < nb; i++) {
            const int8_t *xq = a->qs + i * QK_K; /* scalar path */
            (void)xq;
            const uint8_t *ql = b[i].ql, *qh = b[i].qh;
            const int8_t *sc = b[i].scales;
            int32_t sumi = 0;
#ifdef __wasm_simd128__
            const v128_t m4 = wasm_i8x16_splat(0xF), m3 = wasm_i8x16_splat(3), o32 = wasm_i8x16_splat(32);
            v128_t acc = wasm_i32x4_splat(0);
#pragma clang loop unroll(disable)
            for (int k = 0; k < 4; k++) { /* chunk c = k / 2 (128 values), half h = k % 2 (l = 16h .. 16h+15) */
                int c = k >> 1, h = k & 1;
                const uint8_t *l_ = ql + 64 * c, *h_ = qh + 32 * c;
                const int8_t *s_ = sc + 8 * c;
                v128_t l0 = wasm_v128_load(l_ + 16 * h), l1 = wasm_v128_load(l_ + 32 + 16 * h);
                v128_t hh = wasm_v128_load(h_ + 16 * h);
                const int16_t *x0 = a->qs16 + i * QK_K + 128 * c + 16 * h;
                v128_t q1 = wasm_v128_or(wasm_v128_and(l0, m4), wasm_i8x16_shl(wasm_v128_and(hh, m3), 4));
                acc = wasm_i32x4_add(acc, wasm_i32x4_mul(dot_w8_x16(wasm_i8x16_sub(q1, o32), x0), wasm_i32x4_splat(s_[h + 0])));
                v128_t q2 = wasm_v128_or(wasm_v128_and(l1, m4), wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(hh, 2), m3), 4));
                acc = wasm_i32x4_add(acc, wasm_i32x4_mul(dot_w8_x16(wasm_i8x16_sub(q2, o32), x0 + 32), wasm_i32x4_splat(s_[h + 2])));
                v128_t q3 = wasm_v128_or(wasm_u8x16_shr(l0, 4), wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(hh, 4), m3), 4));
                acc = wasm_i32x4_add(acc, wasm_i32x4_mul(dot_w8_x16(wasm_i8x16_sub(q3, o32), x0 + 64), wasm_i32x4_splat(s_[h + 4])));
                v128_t q4 = wasm_v128_or(wasm_u8x16_shr(l1, 4), wasm_i8x16_shl(wasm_u8x16_shr(hh, 6), 4));
                acc = wasm_i32x4_add(acc, wasm_i32x4_mul(dot_w8_x16(wasm_i8x16_sub(q4, o32), x0 + 96), wasm_i32x4_splat(s_[h + 6])));
            }
            sumi = hsum4i(acc);
            (void)xq;
#else
            for (int c = 0; c < 2; c++) {
                int s[8] = {0};
                for (int l = 0; l < 32; l++) {
                    int is = l / 16;
                    int q1 = (int)((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                    int q2 = (int)((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    int q3 = (int)((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    int q4 = (int)((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    const int8_t *x0 = xq + 128 * c;
                    s[is + 0] += q1 * x0[l];
                    s[is + 2] += q2 * x0[l + 32];
                    s[is + 4] += q3 * x0[l + 64];
                    s[is + 6] += q4 * x0[l + 96];
                }
                for (int g = 0; g < 8; g++) sumi += sc[g] * s[g];
                ql += 64;
                qh += 32;
                sc += 8;
            }
#endif
            sumf += (a->d[i] * H2F(b[i].d)) * (float)sumi;
        }
        out[r] = sumf;
    }
}

typedef void (*rows_fn)(const mat_t *, uint32_t, int, const act_t *, float *);

#ifdef __wasm_simd128__
/* Prompt processing: one F32 row against 4 tokens, so each weight load serves four products. */
static void row_f32_x4(const mat_t *w, uint32_t r, const act_t *a, float *y, uint32_t m) {
    const float *W = (const float *)((const uint8_t *)w->data + (size_t)r * w->row_bytes);
    const float *x0 = a[0].f, *x1 = a[1].f, *x2 = a[2].f, *x3 = a[3].f;
    v128_t a0 = wasm_f32x4_splat(0), a1 = a0, a2 = a0, a3 = a0;
    uint32_t n = w->ne0, i = 0;
    for (; i + 4 <= n; i += 4) {
        v128_t wv = wasm_v128_load(W + i);
        a0 = MADD(wv, wasm_v128_load(x0 + i), a0);
        a1 = MADD(wv, wasm_v128_load(x1 + i), a1);
        a2 = MADD(wv, wasm_v128_load(x2 + i), a2);
        a3 = MADD(wv, wasm_v128_load(x3 + i), a3);
    }
    float s0 = hsum4(a0), s1 = hsum4(a1), s2 = hsum4(a2), s3 = hsum4(a3);
    for (; i < n; i++) {
        s0 += W[i] * x0[i]; s1 += W[i] * x1[i]; s2 += W[i] * x2[i]; s3 += W[i] * x3[i];
    }
    y[r] = s0; y[m + r] = s1; y[2 * m + r] = s2; y[3 * m + r] = s3;
}

/* One Q8_0 row against 2 tokens: the widened weights are loaded once per block. */
static void row_q8_0_x2(const mat_t *w, uint32_t r, const act_t *a, float *y, uint32_t m) {
    const block_q8_0 *b = (const block_q8_0 *)((const uint8_t *)w->data + (size_t)r * w->row_bytes);
    uint32_t nb = w->ne0 / QK8_0;
    v128_t acc0 = wasm_f32x4_splat(0), acc1 = acc0;
#pragma clang loop unroll(disable)
    for (uint32_t i = 0; i < nb; i++) {
        const int16_t *xa = a[0].qs16 + i * QK8_0, *xb = a[1].qs16 + i * QK8_0;
        v128_t w0 = LOAD8X8_AT(&b[i], 2), w1 = LOAD8X8_AT(&b[i], 10), w2 = LOAD8X8_AT(&b[i], 18), w3 = LOAD8X8_AT(&b[i], 26);
        v128_t s0 = wasm_i32x4_dot_i16x8(w0, LOAD_AT(xa, 0));
        s0 = wasm_i32x4_add(s0, wasm_i32x4_dot_i16x8(w1, LOAD_AT(xa, 16)));
        s0 = wasm_i32x4_add(s0, wasm_i32x4_dot_i16x8(w2, LOAD_AT(xa, 32)));
        s0 = wasm_i32x4_add(s0, wasm_i32x4_dot_i16x8(w3, LOAD_AT(xa, 48)));
        v128_t s1 = wasm_i32x4_dot_i16x8(w0, LOAD_AT(xb, 0));
        s1 = wasm_i32x4_add(s1, wasm_i32x4_dot_i16x8(w1, LOAD_AT(xb, 16)));
        s1 = wasm_i32x4_add(s1, wasm_i32x4_dot_i16x8(w2, LOAD_AT(xb, 32)));
        s1 = wasm_i32x4_add(s1, wasm_i32x4_dot_i16x8(w3, LOAD_AT(xb, 48)));
        float dw = H2F(b[i].d);
        acc0 = MADD(wasm_f32x4_convert_i32x4(s0), wasm_f32x4_splat(dw * a[0].d[i]), acc0);
        acc1 = MADD(wasm_f32x4_convert_i32x4(s1), wasm_f32x4_splat(dw * a[1].d[i]), acc1);
    }
    y[r] = hsum4(acc0);
    y[m + r] = hsum4(acc1);
}

/* K-quant rows for prompt batches: the row is unpacked once into int8 values and integer scales, then every
 * token runs plain int8 x int16 dot products. The integer sums are the same as in rows_q4_K / rows_q6_K, so
 * batch and single-token results agree. */
typedef struct {
    int8_t *v;       /* n values: Q4_K nibble 0..15, Q6_K q - 32 */
    int32_t *sc;     /* Q4_K: scale per 32; Q6_K: scale per 16 */
    int32_t *mn;     /* Q4_K: min per 32 */
    float *d, *dmin; /* per super-block */
    uint32_t cap;
} kunpack_t;
static kunpack_t KU;

static int kunpack_reserve(uint32_t n) {
    if (KU.cap >= n) return 1;
    free(KU.v); free(KU.sc); free(KU.mn); free(KU.d); free(KU.dmin);
    KU.v = malloc(n + 64);
    KU.sc = malloc((n / 16 + 1) * 4);
    KU.mn = malloc((n / 32 + 1) * 4);
    KU.d = malloc((n / QK_K + 1) * 4);
    KU.dmin = malloc((n / QK_K + 1) * 4);
    KU.cap = (KU.v && KU.sc && KU.mn && KU.d && KU.dmin) ? n : 0;
    return KU.cap != 0;
}

static void kunpack_row(const mat_t *w, uint32_t r) {
    const uint8_t *row = (const uint8_t *)w->data + (size_t)r * w->row_bytes;
    uint32_t nb = w->ne0 / QK_K;
    for (uint32_t i = 0; i < nb; i++) {
        int8_t *v = KU.v + i * QK_K;
        if (w->type == GGML_Q4_K) {
            const block_q4_K *b = (const block_q4_K *)row + i;
            KU.d[i] = H2F(b->d);
            KU.dmin[i] = H2F(b->dmin);
            for (int j = 0; j < 8; j++) {
                uint8_t sc, mn;
                q4k_scale_min(j, b->scales, &sc, &mn);
                KU.sc[i * 8 + j] = sc;
                KU.mn[i * 8 + j] = mn;
            }
            for (int j = 0; j < 4; j++) {
                const uint8_t *q = b->qs + 32 * j;
                v128_t q0 = wasm_v128_load(q), q1 = wasm_v128_load(q + 16), m4 = wasm_i8x16_splat(0xF);
                wasm_v128_store(v + 64 * j, wasm_v128_and(q0, m4));
                wasm_v128_store(v + 64 * j + 16, wasm_v128_and(q1, m4));
                wasm_v128_store(v + 64 * j + 32, wasm_u8x16_shr(q0, 4));
                wasm_v128_store(v + 64 * j + 48, wasm_u8x16_shr(q1, 4));
            }
        } else {
            const block_q6_K *b = (const block_q6_K *)row + i;
            KU.d[i] = H2F(b->d);
            for (int g = 0; g < 16; g++) KU.sc[i * 16 + g] = b->scales[g];
            const v128_t m4 = wasm_i8x16_splat(0xF), m3 = wasm_i8x16_splat(3), o32 = wasm_i8x16_splat(32);
            for (int c = 0; c < 2; c++) {
                const uint8_t *ql = b->ql + 64 * c, *qh = b->qh + 32 * c;
                for (int h = 0; h < 2; h++) {
                    v128_t l0 = wasm_v128_load(ql + 16 * h), l1 = wasm_v128_load(ql + 32 + 16 * h);
                    v128_t hh = wasm_v128_load(qh + 16 * h);
                    int8_t *o = v + 128 * c + 16 * h;
                    wasm_v128_store(o, wasm_i8x16_sub(wasm_v128_or(wasm_v128_and(l0, m4), wasm_i8x16_shl(wasm_v128_and(hh, m3), 4)), o32));
                    wasm_v128_store(o + 32, wasm_i8x16_sub(wasm_v128_or(wasm_v128_and(l1, m4), wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(hh, 2), m3), 4)), o32));
                    wasm_v128_store(o + 64, wasm_i8x16_sub(wasm_v128_or(wasm_u8x16_shr(l0, 4), wasm_i8x16_shl(wasm_v128_and(wasm_u8x16_shr(hh, 4), m3), 4)), o32));
                    wasm_v128_store(o + 96, wasm_i8x16_sub(wasm_v128_or(wasm_u8x16_shr(l1, 4), wasm_i8x16_shl(wasm_u8x16_shr(hh, 6), 4)), o32));
                }
            }
        }
    }
}

/* 16 int8 values against 16 int16 activations */
static inline v128_t dot16_v8_x16(const int8_t *v, const int16_t *x) {
    return wasm_i32x4_add(wasm_i32x4_dot_i16x8(LOAD8X8_AT(v, 0), LOAD_AT(x, 0)),
                          wasm_i32x4_dot_i16x8(LOAD8X8_AT(v, 8), LOAD_AT(x, 16)));
}

static float kunpacked_dot(const mat_t *w, const act_t *a) {
    uint32_t nb = w->ne0 / QK_K;
    float sumf = 0.0f;
    for (uint32_t i = 0; i < nb; i++) {
        const int8_t *v = KU.v + i * QK_K;
        const int16_t *x = a->qs16 + i * QK_K;
        v128_t acc = wasm_i32x4_splat(0);
        if (w->type == GGML_Q4_K) {
#pragma clang loop unroll(disable)
            for (int j = 0; j < 8; j++) {
                v128_t s = wasm_i32x4_add(dot16_v8_x16(v + 32 * j, x + 32 * j), dot16_v8_x16(v + 32 * j + 16, x + 32 * j + 16));
                acc = wasm_i32x4_add(acc, wasm_i32x4_mul(s, wasm_i32x4_splat(KU.sc[i * 8 + j])));
            }
            const int16_t *bs = a->bsums + i * (QK_K / 16);
            int32_t summs = 0;
            for (int j = 0; j < 8; j++) summs += KU.mn[i * 8 + j] * (bs[2 * j] + bs[2 * j + 1]);
            float d = a->d[i] * KU.d[i], dmin = a->d[i] * KU.dmin[i];
            sumf += d * (float)hsum4i(acc) - dmin * (float)summs;
        } else {
#pragma clang loop unroll(disable)
            for (int g = 0; g < 16; g++)
                acc = wasm_i32x4_add(acc, wasm_i32x4_mul(dot16_v8_x16(v + 16 * g, x + 16 * g), wasm_i32x4_splat(KU.sc[i * 16 + g])));
            sumf += (a->d[i] * KU.d[i]) * (float)hsum4i(acc);
        }
    }
    return sumf;
}
#endif

void matmul(float *y, const mat_t *w, const float *x, int T, void *scratch) {
    if (!h2f_ready) h2f_init();
    uint32_t n = w->ne0, m = w->ne1;
    act_t acts[64];
    uint8_t *s = (uint8_t *)scratch;
    rows_fn fn = 0;
    for (int t = 0; t < T; t++) {
        act_t *a = &acts[t];
        const float *xt = x + (size_t)t * n;
        memset(a, 0, sizeof(*a));
        switch (w->type) {
        case GGML_F32: a->f = xt; fn = rows_f32; break;
        case GGML_F16: {
            float *f = (float *)s;
            s += (size_t)n * 4;
            for (uint32_t i = 0; i < n; i++) f[i] = H2F(f32_to_fp16(xt[i]));
            a->f = f;
            fn = rows_f16;
        } break;
        case GGML_Q8_0: case GGML_Q4_0: {
            a->d = (float *)s;
            s += (n / 32 + 1) * 4;
            a->qs = (int8_t *)s;
            s += (n + 15) & ~15u;
            quantize_q8_0(xt, n, a->qs, a->d);
            a->qs16 = (int16_t *)s;
            s += ((size_t)n * 2 + 15) & ~(size_t)15;
            for (uint32_t i = 0; i < n; i++) a->qs16[i] = a->qs[i];
            fn = w->type == GGML_Q8_0 ? rows_q8_0 : rows_q4_0;
        } break;
        default: { /* K-quants */
            a->d = (float *)s;
            s += (n / QK_K + 1) * 4;
            a->bsums = (int16_t *)s;
            s += ((n / 16 + 1) * 2 + 15) & ~15u;
            a->qs = (int8_t *)s;
            s += (n + 15) & ~15u;
            quantize_q8_K(xt, n, a->qs, a->d, a->bsums);
            a->qs16 = (int16_t *)s;
            s += ((size_t)n * 2 + 15) & ~(size_t)15;
            for (uint32_t i = 0; i < n; i++) a->qs16[i] = a->qs[i];
            fn = w->type == GGML_Q4_K ? rows_q4_K : rows_q6_K;
        } break;
        }
    }
    float tmp[4];
#ifdef __wasm_simd128__
    if (T > 1 && (w->type == GGML_F32 || w->type == GGML_Q8_0)) {
        int step = w->type == GGML_F32 ? 4 : 2;
        int Tb = T / step * step;
        for (uint32_t r = 0; r < m; r++) {
            for (int t = 0; t < Tb; t += step) {
                if (step == 4) row_f32_x4(w, r, &acts[t], y + (size_t)t * m, m);
                else row_q8_0_x2(w, r, &acts[t], y + (size_t)t * m, m);
            }
            for (int t = Tb; t < T; t++) {
                fn(w, r, 1, &acts[t], tmp);
                y[(size_t)t * m + r] = tmp[0];
            }
        }
        return;
    }
    if (T > 1 && (w->type == GGML_Q4_K || w->type == GGML_Q6_K) && kunpack_reserve(n)) {
        for (uint32_t r = 0; r < m; r++) {
            kunpack_row(w, r);
            for (int t = 0; t < T; t++) y[(size_t)t * m + r] = kunpacked_dot(w, &acts[t]);
        }
        return;
    }
#endif
    for (uint32_t r = 0; r < m; r += 4) {
        int nr = m - r < 4 ? (int)(m - r) : 4;
        for (int t = 0; t < T; t++) {
            fn(w, r, nr, &acts[t], tmp);
            for (int i = 0; i < nr; i++) y[(size_t)t * m + r + i] = tmp[i];
        }
    }
}
