/* Tensor formats: half floats, the ggml block formats (F32, F16, Q4_0, Q8_0, Q4_K, Q6_K) and activation
 * quantization. Numerics follow ggml's CPU backend: activations are rounded to F16 for F16 weights, quantized to
 * Q8_0 blocks for Q4_0/Q8_0 weights and to Q8_K blocks for the K-quants; the integer block sums are exact, so
 * results agree with llama.cpp up to float summation order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "quant.h"

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
float h2f_table[65536];
int h2f_ready;

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

void h2f_init(void) {
    if (h2f_ready) return;
    for (uint32_t i = 0; i < 65536; i++) h2f_table[i] = h2f_compute((uint16_t)i);
    h2f_ready = 1;
}

float fp16_to_f32(uint16_t h) {
    if (!h2f_ready) h2f_init();
    return h2f_table[h];
}


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
        uint32_t st;
        const block_q8_0 *b = q8_row(m, row, &st);
        for (uint32_t i = 0; i < n / QK8_0; i++, b += st) {
            float d = H2F(b->d);
            for (int j = 0; j < QK8_0; j++) y[i * QK8_0 + j] = d * b->qs[j];
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

/* Rewrites a Q8_0 matrix in place so that each group of `group` consecutive rows alternates block by block: a
 * kernel computing those rows at once then reads one sequential stream (several interleaved streams run at
 * half speed on some CPUs). The bytes of every block are unchanged, so results are too. Returns 0 when the
 * matrix is left as it is. */
int q8_interleave_rows(mat_t *m, uint32_t group) {
    if (m->type != GGML_Q8_0 || m->q8_group > 1 || group < 2 || m->ne1 % group) return 0;
    size_t rb = m->row_bytes, bs = sizeof(block_q8_0);
    uint32_t nb = m->ne0 / QK8_0;
    uint8_t *tmp = malloc(group * rb);
    if (!tmp) return 0;
    uint8_t *base = (uint8_t *)m->data;
    for (uint32_t r = 0; r < m->ne1; r += group) {
        uint8_t *grp = base + (size_t)r * rb;
        memcpy(tmp, grp, group * rb);
        for (uint32_t i = 0; i < nb; i++)
            for (uint32_t k = 0; k < group; k++)
                memcpy(grp + ((size_t)group * i + k) * bs, tmp + k * rb + (size_t)i * bs, bs);
    }
    free(tmp);
    m->q8_group = group;
    return 1;
}

/* ---- activation quantization ------------------------------------------------------------------------ */
void quantize_q8_0(const float *x, uint32_t n, int8_t *qs, float *d) {
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

void quantize_q8_K(const float *x, uint32_t n, int8_t *qs, float *d, int16_t *bsums) {
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
