/* Matrix-vector and prompt-batch kernels over the ggml block formats, with wasm SIMD paths (one weight row
 * per pass: Cranelift keeps these loops in registers) and portable C fallbacks for the native build. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"

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

/* Attention scores over the F32 KV cache: att[p] = dot_f32(q, k_p, n) * scale, k_p = k + p * stride bytes.
 * Two positions per pass share the loads of q; each position gets the same operations in the same order as
 * dot_f32, so the scores are bit for bit those of one dot_f32 call per position. */
void attn_scores_f32(float *att, const float *q, const uint8_t *k, size_t stride, uint32_t np, int n, float scale) {
    uint32_t p = 0;
#ifdef __wasm_simd128__
    if (n % 8 == 0) {
        for (; p + 2 <= np; p += 2) {
            const float *ka = (const float *)(k + p * stride), *kb = (const float *)(k + (p + 1) * stride);
            v128_t a0 = wasm_f32x4_splat(0), a1 = a0, b0 = a0, b1 = a0;
            const float *qi = q;
#pragma clang loop unroll(disable)
            for (int i = 0; i < n; i += 8, qi += 8, ka += 8, kb += 8) {
                v128_t q0 = LOAD_AT(qi, 0), q1 = LOAD_AT(qi, 16);
                a0 = MADD(q0, LOAD_AT(ka, 0), a0);
                a1 = MADD(q1, LOAD_AT(ka, 16), a1);
                b0 = MADD(q0, LOAD_AT(kb, 0), b0);
                b1 = MADD(q1, LOAD_AT(kb, 16), b1);
            }
            att[p] = hsum4(wasm_f32x4_add(a0, a1)) * scale;
            att[p + 1] = hsum4(wasm_f32x4_add(b0, b1)) * scale;
        }
    }
#endif
    for (; p < np; p++) att[p] = dot_f32(q, (const float *)(k + p * stride), n) * scale;
}

/* Attention output over the F32 KV cache: out = sum over p of (att[p] * scale) * v_p, v_p = v + p * stride
 * bytes. 16 outputs at a time stay in registers across all positions; every output gets the same multiply-adds
 * in the same order as np calls of axpy_f32 on a zeroed out, so the result is bit for bit the same. */
void attn_values_f32(float *out, const float *att, float scale, const uint8_t *v, size_t stride, uint32_t np, int n) {
    int i = 0;
#ifdef __wasm_simd128__
    for (; i + 16 <= n; i += 16) {
        v128_t o0 = wasm_f32x4_splat(0), o1 = o0, o2 = o0, o3 = o0;
        const uint8_t *vp = v + (size_t)i * 4;
#pragma clang loop unroll(disable)
        for (uint32_t p = 0; p < np; p++, vp += stride) {
            v128_t a = wasm_f32x4_splat(att[p] * scale);
            o0 = MADD(a, LOAD_AT(vp, 0), o0);
            o1 = MADD(a, LOAD_AT(vp, 16), o1);
            o2 = MADD(a, LOAD_AT(vp, 32), o2);
            o3 = MADD(a, LOAD_AT(vp, 48), o3);
        }
        wasm_v128_store(out + i, o0);
        wasm_v128_store(out + i + 4, o1);
        wasm_v128_store(out + i + 8, o2);
        wasm_v128_store(out + i + 12, o3);
    }
#endif
    if (i < n) {
        memset(out + i, 0, (size_t)(n - i) * 4);
        for (uint32_t p = 0; p < np; p++) axpy_f32(out + i, att[p] * scale, (const float *)(v + p * stride) + i, n - i);
    }
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

#ifdef __wasm_simd128__
/* Volatile loads keep program order: clang otherwise hoists the loads of later steps above the arithmetic of
 * earlier ones, and Cranelift then runs out of registers and spills. */
#define VLOAD8X8_AT(p, off) ({ v128_t r_; __asm__ volatile("local.get %1\n\ti16x8.load8x8_s " #off ":p2align=0\n\tlocal.set %0" : "=r"(r_) : "r"(p)); r_; })
#define VLOAD_AT(p, off) ({ v128_t r_; __asm__ volatile("local.get %1\n\tv128.load " #off ":p2align=0\n\tlocal.set %0" : "=r"(r_) : "r"(p)); r_; })

/* Cranelift computes pure values where a side effect first needs them: storing each row's sum makes it finish
 * that row before the next row's weights are loaded, which keeps every value of the loop in registers. */
static v128_t q8_sink_store;
static v128_t *volatile q8_sink = &q8_sink_store;

/* The f16 scale at byte offset off of p (a memarg offset, as for the vector loads) */
#define VLOAD16_AT(p, off) ({ uint32_t r_; __asm__ volatile("local.get %1\n\ti32.load16_u " #off ":p2align=0\n\tlocal.set %0" : "=r"(r_) : "r"(p)); r_; })

/* One row of an interleaved group (its block at byte offset O0 of p: scale at O0, quants from O2) against the
 * 32 activations in x0_..x3_, accumulated into acc; the sum is then stored to the sink when SINK is 1. */
#define Q8_GROUP_ROW(acc, p, O0, O2, O10, O18, O26, dx, SINK)                                                   \
    do {                                                                                                       \
        v128_t s_ = wasm_i32x4_dot_i16x8(VLOAD8X8_AT(p, O2), x0_);                                             \
        s_ = wasm_i32x4_add(s_, wasm_i32x4_dot_i16x8(VLOAD8X8_AT(p, O10), x1_));                               \
        s_ = wasm_i32x4_add(s_, wasm_i32x4_dot_i16x8(VLOAD8X8_AT(p, O18), x2_));                               \
        s_ = wasm_i32x4_add(s_, wasm_i32x4_dot_i16x8(VLOAD8X8_AT(p, O26), x3_));                               \
        acc = MADD(wasm_f32x4_convert_i32x4(s_), wasm_f32x4_splat(H2F(VLOAD16_AT(p, O0)) * (dx)), acc);        \
        if (SINK) __asm__ volatile("local.get %0\n\tlocal.get %1\n\tv128.store 0" : : "r"(sink), "r"(acc));    \
    } while (0)
#define Q8_LOAD_X(xq)                                                                                          \
    v128_t x0_ = VLOAD_AT(xq, 0), x1_ = VLOAD_AT(xq, 16), x2_ = VLOAD_AT(xq, 32), x3_ = VLOAD_AT(xq, 48)
#endif

static void rows_q8_0(const mat_t *w, uint32_t r0, int nr, const act_t *a, float *out) {
    uint32_t nb = w->ne0 / QK8_0;
    int r = 0;
#ifdef __wasm_simd128__
    /* Row groups stored interleaved: one sequential stream, the activation loads shared by the rows of a group,
     * and independent accumulator chains; within a row the accumulation is block by block as in one-row code. */
    v128_t *sink = q8_sink;
    const int16_t *xs0 = a->qs16; /* locals: a->... would be reloaded from memory every block */
    const float *xd = a->d;
    if (w->q8_group == 4 && r0 % 4 == 0) {
        for (; r + 4 <= nr; r += 4) {
            const block_q8_0 *p = (const block_q8_0 *)((const uint8_t *)w->data + (size_t)(r0 + r) * w->row_bytes);
            v128_t c0 = wasm_f32x4_splat(0), c1 = c0, c2 = c0, c3 = c0;
            const int16_t *xs = xs0;
#pragma clang loop unroll(disable)
            for (uint32_t i = 0; i < nb; i++, p += 4, xs += QK8_0) {
                Q8_LOAD_X(xs);
                float dx = xd[i];
                Q8_GROUP_ROW(c0, p, 0, 2, 10, 18, 26, dx, 1);
                Q8_GROUP_ROW(c1, p, 34, 36, 44, 52, 60, dx, 1);
                Q8_GROUP_ROW(c2, p, 68, 70, 78, 86, 94, dx, 1);
                Q8_GROUP_ROW(c3, p, 102, 104, 112, 120, 128, dx, 0);
            }
            out[r] = hsum4(c0);
            out[r + 1] = hsum4(c1);
            out[r + 2] = hsum4(c2);
            out[r + 3] = hsum4(c3);
        }
    }
#endif
    for (; r < nr; r++) {
        uint32_t st;
        const block_q8_0 *b = q8_row(w, r0 + r, &st);
#ifdef __wasm_simd128__
        v128_t acc = wasm_f32x4_splat(0);
        const int16_t *xs = a->qs16;
#pragma clang loop unroll(disable)
        for (uint32_t i = 0; i < nb; i++, b += st) {
            v128_t s0 = dot_q8_block(b, xs + i * QK8_0);
            acc = MADD(wasm_f32x4_convert_i32x4(s0), wasm_f32x4_splat(H2F(b->d) * xd[i]), acc);
        }
        out[r] = hsum4(acc);
#else
        float s = 0.0f;
        for (uint32_t i = 0; i < nb; i++, b += st) {
            int sumi = 0;
            for (int j = 0; j < QK8_0; j++) sumi += b->qs[j] * a->qs[i * QK8_0 + j];
            s += (H2F(b->d) * a->d[i]) * (float)sumi;
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
    const int8_t *aq = a->qs; /* locals: fields of a would be reloaded from memory in the loops */
    const int16_t *as16 = a->qs16, *absum = a->bsums;
    const float *ad = a->d;
    (void)as16;
    for (int r = 0; r < nr; r++) {
        const block_q4_K *b = (const block_q4_K *)((const uint8_t *)w->data + (size_t)(r0 + r) * w->row_bytes);
        float sumf = 0.0f;
        for (uint32_t i = 0; i < nb; i++) {
            const int8_t *xq = aq + i * QK_K; /* scalar path */
            (void)xq;
            const int16_t *bs = absum + i * (QK_K / 16);
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
            const int16_t *x16 = as16 + i * QK_K;
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
            float d = ad[i] * H2F(b[i].d);
            float dmin = ad[i] * H2F(b[i].dmin);
            sumf += d * (float)sumi - dmin * (float)summs;
        }
        out[r] = sumf;
    }
}

static void rows_q6_K(const mat_t *w, uint32_t r0, int nr, const act_t *a, float *out) {
    uint32_t nb = w->ne0 / QK_K;
    const int8_t *aq = a->qs; /* locals: fields of a would be reloaded from memory in the loops */
    const int16_t *as16 = a->qs16;
    const float *ad = a->d;
    (void)as16;
    for (int r = 0; r < nr; r++) {
        const block_q6_K *b = (const block_q6_K *)((const uint8_t *)w->data + (size_t)(r0 + r) * w->row_bytes);
        float sumf = 0.0f;
        for (uint32_t i = 0; i < nb; i++) {
            const int8_t *xq = aq + i * QK_K; /* scalar path */
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
                const int16_t *x0 = as16 + i * QK_K + 128 * c + 16 * h;
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
            sumf += (ad[i] * H2F(b[i].d)) * (float)sumi;
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

/* One Q8_0 row against 4 tokens: the widened weights are loaded once per block. */
static void row_q8_0_x4(const mat_t *w, uint32_t r, const act_t *a, float *y, uint32_t m) {
    uint32_t st;
    const block_q8_0 *b = q8_row(w, r, &st);
    uint32_t nb = w->ne0 / QK8_0;
    const int16_t *x0 = a[0].qs16, *x1 = a[1].qs16, *x2 = a[2].qs16, *x3 = a[3].qs16;
    const float *d0 = a[0].d, *d1 = a[1].d, *d2 = a[2].d, *d3 = a[3].d;
    v128_t c0 = wasm_f32x4_splat(0), c1 = c0, c2 = c0, c3 = c0;
    v128_t *sink = q8_sink; /* see Q8_GROUP_ROW: each token's sum is finished before the next one's loads */
#pragma clang loop unroll(disable)
    for (uint32_t i = 0; i < nb; i++, b += st, x0 += QK8_0, x1 += QK8_0, x2 += QK8_0, x3 += QK8_0) {
        v128_t w0 = VLOAD8X8_AT(b, 2), w1 = VLOAD8X8_AT(b, 10), w2 = VLOAD8X8_AT(b, 18), w3 = VLOAD8X8_AT(b, 26);
        float dw = H2F(b->d);
#define Q8_TOKEN(xp, dp, c, SINK)                                                                             \
    do {                                                                                                       \
        v128_t s_ = wasm_i32x4_dot_i16x8(w0, VLOAD_AT(xp, 0));                                                 \
        s_ = wasm_i32x4_add(s_, wasm_i32x4_dot_i16x8(w1, VLOAD_AT(xp, 16)));                                    \
        s_ = wasm_i32x4_add(s_, wasm_i32x4_dot_i16x8(w2, VLOAD_AT(xp, 32)));                                    \
        s_ = wasm_i32x4_add(s_, wasm_i32x4_dot_i16x8(w3, VLOAD_AT(xp, 48)));                                    \
        c = MADD(wasm_f32x4_convert_i32x4(s_), wasm_f32x4_splat(dw * dp[i]), c);                               \
        if (SINK) __asm__ volatile("local.get %0\n\tlocal.get %1\n\tv128.store 0" : : "r"(sink), "r"(c));      \
    } while (0)
        Q8_TOKEN(x0, d0, c0, 1);
        Q8_TOKEN(x1, d1, c1, 1);
        Q8_TOKEN(x2, d2, c2, 1);
        Q8_TOKEN(x3, d3, c3, 0);
#undef Q8_TOKEN
    }
    y[r] = hsum4(c0);
    y[m + r] = hsum4(c1);
    y[2 * m + r] = hsum4(c2);
    y[3 * m + r] = hsum4(c3);
}

/* One Q8_0 row against 2 tokens: the widened weights are loaded once per block. */
static void row_q8_0_x2(const mat_t *w, uint32_t r, const act_t *a, float *y, uint32_t m) {
    uint32_t st;
    const block_q8_0 *b = q8_row(w, r, &st);
    uint32_t nb = w->ne0 / QK8_0;
    v128_t acc0 = wasm_f32x4_splat(0), acc1 = acc0;
#pragma clang loop unroll(disable)
    for (uint32_t i = 0; i < nb; i++, b += st) {
        const int16_t *xa = a[0].qs16 + i * QK8_0, *xb = a[1].qs16 + i * QK8_0;
        v128_t w0 = LOAD8X8_AT(b, 2), w1 = LOAD8X8_AT(b, 10), w2 = LOAD8X8_AT(b, 18), w3 = LOAD8X8_AT(b, 26);
        v128_t s0 = wasm_i32x4_dot_i16x8(w0, LOAD_AT(xa, 0));
        s0 = wasm_i32x4_add(s0, wasm_i32x4_dot_i16x8(w1, LOAD_AT(xa, 16)));
        s0 = wasm_i32x4_add(s0, wasm_i32x4_dot_i16x8(w2, LOAD_AT(xa, 32)));
        s0 = wasm_i32x4_add(s0, wasm_i32x4_dot_i16x8(w3, LOAD_AT(xa, 48)));
        v128_t s1 = wasm_i32x4_dot_i16x8(w0, LOAD_AT(xb, 0));
        s1 = wasm_i32x4_add(s1, wasm_i32x4_dot_i16x8(w1, LOAD_AT(xb, 16)));
        s1 = wasm_i32x4_add(s1, wasm_i32x4_dot_i16x8(w2, LOAD_AT(xb, 32)));
        s1 = wasm_i32x4_add(s1, wasm_i32x4_dot_i16x8(w3, LOAD_AT(xb, 48)));
        float dw = H2F(b->d);
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
        int step = (w->type == GGML_F32 || T >= 4) ? 4 : 2;
        int Tb = T / step * step;
        for (uint32_t r = 0; r < m; r++) {
            for (int t = 0; t < Tb; t += step) {
                if (w->type == GGML_F32) row_f32_x4(w, r, &acts[t], y + (size_t)t * m, m);
                else if (step == 4) row_q8_0_x4(w, r, &acts[t], y + (size_t)t * m, m);
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
    if (T == 1) { /* one call for all rows: the row kernels' setup is paid once per matrix */
        fn(w, 0, (int)m, &acts[0], y);
        return;
    }
    for (uint32_t r = 0; r < m; r += 4) {
        int nr = m - r < 4 ? (int)(m - r) : 4;
        for (int t = 0; t < T; t++) {
            fn(w, r, nr, &acts[t], tmp);
            for (int i = 0; i < nr; i++) y[(size_t)t * m + r + i] = tmp[i];
        }
    }
}
