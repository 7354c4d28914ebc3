/* The llama-family transformer: llama (Llama 2/3, TinyLlama, SmolLM: RMSNorm, RoPE on interleaved pairs, GQA,
 * SwiGLU) and phi3 (fused QKV and gate/up, NEOX RoPE). Weights are used in place from the GGUF image; only the
 * KV cache and the activations are allocated. Operation order follows llama.cpp's graph so that greedy output
 * matches it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm.h"

#define MAX_BATCH 32

static char arch_key_buf[160];
static const char *akey(const char *arch, const char *suffix) {
    snprintf(arch_key_buf, sizeof(arch_key_buf), "%s.%s", arch, suffix);
    return arch_key_buf;
}

/* Tensors already rewritten in place by q8_interleave_pairs during this load (a tensor fetched twice must not
 * be rewritten twice). */
#define MAX_REPACKED 4096
static const void *repacked[MAX_REPACKED];
static uint32_t n_repacked;

static int get_mat(const gguf_file *g, const char *name, uint32_t ne0, uint32_t ne1, mat_t *out, int required) {
    const gguf_tensor *t = gguf_tensor_find(g, name);
    memset(out, 0, sizeof(*out));
    if (!t) {
        if (required) llm_set_error("the model is missing tensor '%s'", name);
        return required ? LLM_ERR_FORMAT : LLM_OK;
    }
    if (t->ne[0] != ne0 || t->ne[1] != ne1 || t->ne[2] != 1 || t->ne[3] != 1) {
        llm_set_error("tensor '%s' has shape [%u, %u] but the metadata implies [%u, %u]", name, t->ne[0], t->ne[1], ne0, ne1);
        return LLM_ERR_FORMAT;
    }
    out->data = t->data;
    out->type = t->type;
    out->ne0 = ne0;
    out->ne1 = ne1;
    out->row_bytes = (size_t)(ne0 / type_block_size(t->type)) * type_block_bytes(t->type);
#ifdef __wasm_simd128__
    /* the wasm kernels compute Q8_0 rows four at a time from one interleaved stream */
    if (t->type == GGML_Q8_0 && ne1 % 4 == 0) {
        const uint32_t group = 4;
        uint32_t k = 0;
        while (k < n_repacked && repacked[k] != out->data) k++;
        if (k < n_repacked) out->q8_group = group;
        else if (n_repacked < MAX_REPACKED && q8_interleave_rows(out, group)) repacked[n_repacked++] = out->data;
    }
#endif
    return LLM_OK;
}

/* 1-D tensors (norms, biases) are copied to F32. */
static int get_vec(const gguf_file *g, const char *name, uint32_t n, float **out, int required) {
    mat_t m;
    *out = NULL;
    const gguf_tensor *t = gguf_tensor_find(g, name);
    if (!t) {
        if (required) llm_set_error("the model is missing tensor '%s'", name);
        return required ? LLM_ERR_FORMAT : LLM_OK;
    }
    int rc = get_mat(g, name, n, 1, &m, 1);
    if (rc) return rc;
    *out = malloc((size_t)n * 4);
    if (!*out) {
        llm_set_error("out of memory");
        return LLM_ERR_MEMORY;
    }
    dequant_row(&m, 0, *out);
    return LLM_OK;
}

/* Big buffers (the KV cache) get their own pages: wasi-libc's malloc grows memory by about twice a large
 * request, which would waste up to 2 GB of the 4 GiB address space. Fresh pages are zero and untouched, so
 * they cost no RSS until written. The pages return when the host drops the instance. */
static void *region_alloc(size_t bytes, int *rc) {
#if defined(__wasm__)
    uint32_t pages = (uint32_t)(((uint64_t)bytes + 65535) / 65536);
    int old = __builtin_wasm_memory_grow(0, pages);
    void *p = old < 0 ? NULL : (void *)((uintptr_t)old * 65536u);
#else
    void *p = malloc(bytes ? bytes : 1);
#endif
    if (!p && !*rc) {
        llm_set_error("out of memory: could not allocate %llu bytes for the KV cache; try a smaller context or the "
                      "native engine", (unsigned long long)bytes);
        *rc = LLM_ERR_MEMORY;
    }
    return p;
}

static void region_free(void *p) {
#if defined(__wasm__)
    (void)p;
#else
    free(p);
#endif
}

/* zeroed: small buffers; lazy: the KV cache, whose pages must stay untouched (and out of the resident set)
 * until positions are written: calloc would clear all of it up front. */
static void *xalloc(size_t n, size_t sz, int *rc, int zeroed) {
    void *p = zeroed ? calloc(n ? n : 1, sz) : malloc((n ? n : 1) * sz);
    if (!p && !*rc) {
        llm_set_error("out of memory: could not allocate %llu bytes for the context; try a smaller context or the "
                      "native engine", (unsigned long long)n * sz);
        *rc = LLM_ERR_MEMORY;
    }
    return p;
}

int model_load(model_t *m, const gguf_file *g, uint32_t n_ctx) {
    memset(m, 0, sizeof(*m));
    n_repacked = 0;
    strv arch;
    if (!gguf_get_str(g, "general.architecture", &arch)) {
        llm_set_error("the model has no general.architecture");
        return LLM_ERR_FORMAT;
    }
    char a[32];
    if (arch.n == 5 && memcmp(arch.s, "llama", 5) == 0) m->arch = ARCH_LLAMA;
    else if (arch.n == 4 && memcmp(arch.s, "phi3", 4) == 0) m->arch = ARCH_PHI3;
    else {
        llm_set_error("unsupported architecture '%.*s' (supported: llama, phi3)", (int)(arch.n > 64 ? 64 : arch.n), arch.s);
        return LLM_ERR_UNSUPPORTED;
    }
    memcpy(a, arch.s, arch.n);
    a[arch.n] = 0;
    strv name;
    if (gguf_get_str(g, "general.name", &name)) snprintf(m->name, sizeof(m->name), "%.*s", (int)name.n, name.s);
    uint32_t u;
#define REQ(field, key)                                                                 \
    if (!gguf_get_u32(g, akey(a, key), &u) || u == 0) {                                  \
        llm_set_error("the model's metadata lacks %s.%s", a, key);                       \
        return LLM_ERR_FORMAT;                                                           \
    }                                                                                    \
    m->field = u;
    REQ(n_embd, "embedding_length");
    REQ(n_layer, "block_count");
    REQ(n_ff, "feed_forward_length");
    REQ(n_head, "attention.head_count");
#undef REQ
    m->n_head_kv = m->n_head;
    if (gguf_get_u32(g, akey(a, "attention.head_count_kv"), &u) && u) m->n_head_kv = u;
    m->n_ctx_train = 2048;
    if (gguf_get_u32(g, akey(a, "context_length"), &u) && u) m->n_ctx_train = u;
    if (m->n_embd % m->n_head || m->n_head % m->n_head_kv || m->n_layer > 4096) {
        llm_set_error("inconsistent model shape: %u embedding, %u heads, %u kv heads", m->n_embd, m->n_head, m->n_head_kv);
        return LLM_ERR_FORMAT;
    }
    m->head_dim = m->n_embd / m->n_head;
    m->n_rot = m->head_dim;
    if (gguf_get_u32(g, akey(a, "rope.dimension_count"), &u) && u) m->n_rot = u;
    if (m->n_rot > m->head_dim || (m->n_rot & 1)) {
        llm_set_error("invalid rope.dimension_count %u for head size %u", m->n_rot, m->head_dim);
        return LLM_ERR_FORMAT;
    }
    m->eps = 1e-5f;
    gguf_get_f32(g, akey(a, "attention.layer_norm_rms_epsilon"), &m->eps);
    m->rope_base = 10000.0f;
    gguf_get_f32(g, akey(a, "rope.freq_base"), &m->rope_base);
    m->rope_freq_scale = 1.0f;
    float f;
    if (gguf_get_f32(g, akey(a, "rope.scale_linear"), &f) && f > 0) m->rope_freq_scale = 1.0f / f;
    strv st;
    if (gguf_get_str(g, akey(a, "rope.scaling.type"), &st) && st.n == 6 && memcmp(st.s, "linear", 6) == 0 &&
        gguf_get_f32(g, akey(a, "rope.scaling.factor"), &f) && f > 0)
        m->rope_freq_scale = 1.0f / f;
    m->rope_neox = m->arch == ARCH_PHI3;

    const gguf_tensor *te = gguf_tensor_find(g, "token_embd.weight");
    if (!te) {
        llm_set_error("the model is missing tensor 'token_embd.weight'");
        return LLM_ERR_FORMAT;
    }
    m->n_vocab = te->ne[1];
    int rc = get_mat(g, "token_embd.weight", m->n_embd, m->n_vocab, &m->tok_embd, 1);
    if (rc) return rc;
    rc = get_mat(g, "output.weight", m->n_embd, m->n_vocab, &m->output, 0);
    if (rc) return rc;
    if (!m->output.data) m->output = m->tok_embd; /* tied embeddings */
    if ((rc = get_vec(g, "output_norm.weight", m->n_embd, &m->output_norm, 1))) return rc;
    uint32_t kvd = m->n_head_kv * m->head_dim, d = m->n_embd;
    if (gguf_tensor_find(g, "rope_freqs.weight") &&
        (rc = get_vec(g, "rope_freqs.weight", m->n_rot / 2, &m->rope_factors, 1)))
        return rc;
    m->layers = calloc(m->n_layer, sizeof(layer_t));
    if (!m->layers) {
        llm_set_error("out of memory");
        return LLM_ERR_MEMORY;
    }
    char nm[96];
    for (uint32_t l = 0; l < m->n_layer; l++) {
        layer_t *L = &m->layers[l];
#define T(s) (snprintf(nm, sizeof(nm), "blk.%u.%s", l, s), nm)
        if ((rc = get_vec(g, T("attn_norm.weight"), d, &L->attn_norm, 1))) return rc;
        if ((rc = get_vec(g, T("ffn_norm.weight"), d, &L->ffn_norm, 1))) return rc;
        if ((rc = get_mat(g, T("attn_output.weight"), d, d, &L->wo, 1))) return rc;
        if ((rc = get_mat(g, T("ffn_down.weight"), m->n_ff, d, &L->w_down, 1))) return rc;
        if (m->arch == ARCH_PHI3) {
            if ((rc = get_mat(g, T("attn_qkv.weight"), d, d + 2 * kvd, &L->wqkv, 1))) return rc;
            if ((rc = get_mat(g, T("ffn_up.weight"), d, 2 * m->n_ff, &L->w_up, 1))) return rc;
        } else {
            if ((rc = get_mat(g, T("attn_q.weight"), d, d, &L->wq, 1))) return rc;
            if ((rc = get_mat(g, T("attn_k.weight"), d, kvd, &L->wk, 1))) return rc;
            if ((rc = get_mat(g, T("attn_v.weight"), d, kvd, &L->wv, 1))) return rc;
            if ((rc = get_mat(g, T("ffn_gate.weight"), d, m->n_ff, &L->w_gate, 1))) return rc;
            if ((rc = get_mat(g, T("ffn_up.weight"), d, m->n_ff, &L->w_up, 1))) return rc;
            if ((rc = get_vec(g, T("attn_q.bias"), d, &L->bq, 0))) return rc;
            if ((rc = get_vec(g, T("attn_k.bias"), kvd, &L->bk, 0))) return rc;
            if ((rc = get_vec(g, T("attn_v.bias"), kvd, &L->bv, 0))) return rc;
            if ((rc = get_vec(g, T("attn_output.bias"), d, &L->bo, 0))) return rc;
        }
#undef T
    }
    if (n_ctx == 0) n_ctx = 2048;
    if (n_ctx > m->n_ctx_train) n_ctx = m->n_ctx_train;
    m->n_ctx = n_ctx;
    m->max_batch = MAX_BATCH;
    size_t kv_elems = (size_t)m->n_layer * n_ctx * kvd;
    double kv32 = (double)kv_elems * 8.0;
    (void)kv32;
    m->kv_elt = 4;
#if defined(__wasm__)
    /* what is left of the 4 GiB address space after the model image and a margin for buffers */
    double used = (double)__builtin_wasm_memory_size(0) * 65536.0;
    double room = 4294901760.0 - used - 64e6 - (double)m->n_vocab * 4 - 32.0 * (d + 2 * kvd + 3.0 * m->n_ff) * 8;
    if (kv32 > room) {
        m->kv_f16 = 1;
        m->kv_elt = 2;
    }
    if (kv32 / 2 > room) {
        llm_set_error("the KV cache for %u tokens (%.0f MB even in F16) does not fit in wasm32 memory next to the "
                      "model; use a smaller context or the native engine", n_ctx, kv32 / 2e6);
        return LLM_ERR_MEMORY;
    }
#endif
    rc = 0;
    int B = m->max_batch;
    uint32_t qkvd = d + 2 * kvd;
    m->k_cache = region_alloc(kv_elems * m->kv_elt, &rc);
    m->v_cache = region_alloc(kv_elems * m->kv_elt, &rc);
    m->x = xalloc((size_t)B * d, 4, &rc, 1);
    m->xb = xalloc((size_t)B * d, 4, &rc, 1);
    m->xb2 = xalloc((size_t)B * d, 4, &rc, 1);
    m->q = xalloc((size_t)B * d, 4, &rc, 1);
    m->k = xalloc((size_t)B * kvd, 4, &rc, 1);
    m->v = xalloc((size_t)B * kvd, 4, &rc, 1);
    m->qkv = xalloc((size_t)B * qkvd, 4, &rc, 1);
    m->hb = xalloc((size_t)B * 2 * m->n_ff, 4, &rc, 1);
    m->hb2 = xalloc((size_t)B * m->n_ff, 4, &rc, 1);
    m->att = xalloc(n_ctx, 4, &rc, 1);
    m->logits = xalloc(m->n_vocab, 4, &rc, 1);
    uint32_t widest = d > m->n_ff ? d : m->n_ff;
    m->mscratch = xalloc(matmul_scratch_bytes(widest, B), 1, &rc, 1);
    return rc;
}

void model_free(model_t *m) {
    if (m->layers) {
        for (uint32_t l = 0; l < m->n_layer; l++) {
            layer_t *L = &m->layers[l];
            free(L->attn_norm); free(L->ffn_norm); free(L->bq); free(L->bk); free(L->bv); free(L->bo);
        }
    }
    free(m->layers); free(m->output_norm); free(m->rope_factors);
    region_free(m->k_cache); region_free(m->v_cache); free(m->x); free(m->xb); free(m->xb2); free(m->q); free(m->k); free(m->v);
    free(m->qkv); free(m->hb); free(m->hb2); free(m->att); free(m->logits); free(m->mscratch);
    memset(m, 0, sizeof(*m));
}

/* RMS norm as ggml computes it: the sum of squares in double, then scale and multiply by the weight. */
static void rmsnorm(float *o, const float *x, const float *w, uint32_t n, float eps) {
    double sum = 0.0;
    for (uint32_t i = 0; i < n; i++) sum += (double)(x[i] * x[i]);
    float mean = (float)(sum / n);
    float scale = 1.0f / sqrtf(mean + eps);
    for (uint32_t i = 0; i < n; i++) o[i] = (x[i] * scale) * w[i];
}

static void rope(const model_t *m, float *vec, uint32_t n_heads, uint32_t pos, float *cs) {
    /* cos/sin cache for this position, theta advanced by repeated multiplication like ggml */
    float theta_scale = powf(m->rope_base, -2.0f / (float)m->n_rot);
    float theta = (float)pos;
    for (uint32_t i = 0; i < m->n_rot; i += 2) {
        float ff = m->rope_factors ? m->rope_factors[i / 2] : 1.0f;
        float t = m->rope_freq_scale * (theta / ff);
        cs[i] = cosf(t);
        cs[i + 1] = sinf(t);
        theta *= theta_scale;
    }
    for (uint32_t h = 0; h < n_heads; h++) {
        float *v = vec + h * m->head_dim;
        for (uint32_t i = 0; i < m->n_rot; i += 2) {
            float c = cs[i], s = cs[i + 1];
            uint32_t a = m->rope_neox ? i / 2 : i;
            uint32_t b = m->rope_neox ? i / 2 + m->n_rot / 2 : i + 1;
            float x0 = v[a], x1 = v[b];
            v[a] = x0 * c - x1 * s;
            v[b] = x0 * s + x1 * c;
        }
    }
}

static float silu(float x) { return x / (1.0f + expf(-x)); }

/* One batch of T <= max_batch tokens at positions n_past .. n_past+T-1. */
static void forward_batch(model_t *m, const int32_t *toks, int T, int want_logits) {
    uint32_t d = m->n_embd, kvd = m->n_head_kv * m->head_dim, hd = m->head_dim, ff = m->n_ff;
    uint32_t group = m->n_head / m->n_head_kv;
    float cs[1024];
    for (int t = 0; t < T; t++) dequant_row(&m->tok_embd, (uint32_t)toks[t], m->x + (size_t)t * d);
    float kq_scale = m->arch == ARCH_PHI3 ? 1.0f : 1.0f / sqrtf((float)hd);
    for (uint32_t l = 0; l < m->n_layer; l++) {
        layer_t *L = &m->layers[l];
        for (int t = 0; t < T; t++) rmsnorm(m->xb + (size_t)t * d, m->x + (size_t)t * d, L->attn_norm, d, m->eps);
        if (m->arch == ARCH_PHI3) {
            uint32_t qd = d + 2 * kvd;
            matmul(m->qkv, &L->wqkv, m->xb, T, m->mscratch);
            for (int t = 0; t < T; t++) {
                memcpy(m->q + (size_t)t * d, m->qkv + (size_t)t * qd, d * 4);
                memcpy(m->k + (size_t)t * kvd, m->qkv + (size_t)t * qd + d, kvd * 4);
                memcpy(m->v + (size_t)t * kvd, m->qkv + (size_t)t * qd + d + kvd, kvd * 4);
            }
        } else {
            matmul(m->q, &L->wq, m->xb, T, m->mscratch);
            matmul(m->k, &L->wk, m->xb, T, m->mscratch);
            matmul(m->v, &L->wv, m->xb, T, m->mscratch);
            for (int t = 0; t < T; t++) {
                if (L->bq) for (uint32_t i = 0; i < d; i++) m->q[(size_t)t * d + i] += L->bq[i];
                if (L->bk) for (uint32_t i = 0; i < kvd; i++) m->k[(size_t)t * kvd + i] += L->bk[i];
                if (L->bv) for (uint32_t i = 0; i < kvd; i++) m->v[(size_t)t * kvd + i] += L->bv[i];
            }
        }
        uint8_t *kc = (uint8_t *)m->k_cache + (size_t)l * m->n_ctx * kvd * m->kv_elt;
        uint8_t *vc = (uint8_t *)m->v_cache + (size_t)l * m->n_ctx * kvd * m->kv_elt;
        size_t row = (size_t)kvd * m->kv_elt;
        for (int t = 0; t < T; t++) {
            uint32_t pos = m->n_past + (uint32_t)t;
            float *q = m->q + (size_t)t * d;
            rope(m, q, m->n_head, pos, cs);
            rope(m, m->k + (size_t)t * kvd, m->n_head_kv, pos, cs);
            if (m->arch == ARCH_PHI3) {
                float qs = 1.0f / sqrtf((float)hd);
                for (uint32_t i = 0; i < d; i++) q[i] *= qs;
            }
            if (m->kv_f16) {
                uint16_t *kd = (uint16_t *)(kc + pos * row), *vd = (uint16_t *)(vc + pos * row);
                for (uint32_t i = 0; i < kvd; i++) {
                    kd[i] = f32_to_fp16(m->k[(size_t)t * kvd + i]);
                    vd[i] = f32_to_fp16(m->v[(size_t)t * kvd + i]);
                }
            } else {
                memcpy(kc + pos * row, m->k + (size_t)t * kvd, row);
                memcpy(vc + pos * row, m->v + (size_t)t * kvd, row);
            }
        }
        for (int t = 0; t < T; t++) {
            uint32_t pos = m->n_past + (uint32_t)t;
            float *q = m->q + (size_t)t * d;
            float *out = m->xb + (size_t)t * d;
            for (uint32_t h = 0; h < m->n_head; h++) {
                uint32_t kh = h / group;
                const float *qh = q + h * hd;
                float mx = -3.4e38f;
                if (!m->kv_f16) {
                    attn_scores_f32(m->att, qh, kc + (size_t)kh * hd * m->kv_elt, row, pos + 1, (int)hd, kq_scale);
                    for (uint32_t p = 0; p <= pos; p++) mx = m->att[p] > mx ? m->att[p] : mx;
                } else {
                    for (uint32_t p = 0; p <= pos; p++) {
                        const uint8_t *kp = kc + p * row + (size_t)kh * hd * m->kv_elt;
                        float s = dot_f32_f16(qh, (const uint16_t *)kp, (int)hd) * kq_scale;
                        m->att[p] = s;
                        if (s > mx) mx = s;
                    }
                }
                double sum = 0.0;
                for (uint32_t p = 0; p <= pos; p++) {
                    float e = expf(m->att[p] - mx);
                    m->att[p] = e;
                    sum += e;
                }
                float inv = (float)(1.0 / sum);
                float *oh = out + h * hd;
                if (!m->kv_f16) {
                    attn_values_f32(oh, m->att, inv, vc + (size_t)kh * hd * m->kv_elt, row, pos + 1, (int)hd);
                } else {
                    memset(oh, 0, hd * 4);
                    for (uint32_t p = 0; p <= pos; p++) {
                        const uint8_t *vp = vc + p * row + (size_t)kh * hd * m->kv_elt;
                        axpy_f16(oh, m->att[p] * inv, (const uint16_t *)vp, (int)hd);
                    }
                }
            }
        }
        matmul(m->xb2, &L->wo, m->xb, T, m->mscratch);
        for (int t = 0; t < T; t++) {
            float *x = m->x + (size_t)t * d, *o = m->xb2 + (size_t)t * d;
            if (L->bo) for (uint32_t i = 0; i < d; i++) o[i] += L->bo[i];
            for (uint32_t i = 0; i < d; i++) x[i] += o[i];
            rmsnorm(m->xb + (size_t)t * d, x, L->ffn_norm, d, m->eps);
        }
        if (m->arch == ARCH_PHI3) {
            matmul(m->hb, &L->w_up, m->xb, T, m->mscratch);
            for (int t = 0; t < T; t++) {
                const float *gu = m->hb + (size_t)t * 2 * ff;
                float *o = m->hb2 + (size_t)t * ff;
                for (uint32_t i = 0; i < ff; i++) o[i] = silu(gu[i]) * gu[ff + i];
            }
        } else {
            matmul(m->hb, &L->w_gate, m->xb, T, m->mscratch);
            matmul(m->hb2, &L->w_up, m->xb, T, m->mscratch);
            for (size_t i = 0; i < (size_t)T * ff; i++) m->hb2[i] = silu(m->hb[i]) * m->hb2[i];
        }
        matmul(m->xb2, &L->w_down, m->hb2, T, m->mscratch);
        for (size_t i = 0; i < (size_t)T * d; i++) m->x[i] += m->xb2[i];
    }
    m->n_past += (uint32_t)T;
    if (want_logits) {
        float *last = m->x + (size_t)(T - 1) * d;
        rmsnorm(m->xb, last, m->output_norm, d, m->eps);
        matmul(m->logits, &m->output, m->xb, 1, m->mscratch);
    }
}

int model_eval(model_t *m, const int32_t *toks, uint32_t n, int want_logits) {
    if (n == 0) return LLM_OK;
    if ((uint64_t)m->n_past + n > m->n_ctx) {
        llm_set_error("context is full: %u tokens in context + %u new tokens exceeds the context size %u", m->n_past, n,
                      m->n_ctx);
        return LLM_ERR_STATE;
    }
    for (uint32_t i = 0; i < n; i++) {
        if (toks[i] < 0 || (uint32_t)toks[i] >= m->n_vocab) {
            llm_set_error("token id %d is out of range (vocabulary has %u tokens)", toks[i], m->n_vocab);
            return LLM_ERR_STATE;
        }
    }
    if (m->n_rot > 1024) {
        llm_set_error("rope dimension %u is too large", m->n_rot);
        return LLM_ERR_UNSUPPORTED;
    }
    for (uint32_t i = 0; i < n; i += (uint32_t)m->max_batch) {
        uint32_t T = n - i < (uint32_t)m->max_batch ? n - i : (uint32_t)m->max_batch;
        forward_batch(m, toks + i, (int)T, want_logits && i + T == n);
    }
    return LLM_OK;
}
