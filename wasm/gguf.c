/* GGUF v2/v3 reader that works in place on a file image held in memory: every bound is checked so that a
 * truncated or corrupt file gives a clear error instead of reading out of range. */
#include <stdlib.h>
#include <string.h>

#include "llm.h"

typedef struct {
    const uint8_t *p, *end;
    int bad;
} cursor;

static int need(cursor *c, uint64_t n) {
    if (c->bad || (uint64_t)(c->end - c->p) < n) {
        c->bad = 1;
        return 0;
    }
    return 1;
}

static uint32_t rd_u32(cursor *c) {
    uint32_t v = 0;
    if (need(c, 4)) {
        memcpy(&v, c->p, 4);
        c->p += 4;
    }
    return v;
}

static uint64_t rd_u64(cursor *c) {
    uint64_t v = 0;
    if (need(c, 8)) {
        memcpy(&v, c->p, 8);
        c->p += 8;
    }
    return v;
}

static strv rd_str(cursor *c) {
    strv s = {0, 0};
    uint64_t n = rd_u64(c);
    if (n > 0x7fffffffu || !need(c, n)) {
        c->bad = 1;
        return s;
    }
    s.s = (const char *)c->p;
    s.n = (uint32_t)n;
    c->p += n;
    return s;
}

static const int scalar_size[GGUF_T_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

static void skip_value(cursor *c, uint32_t type, int depth) {
    if (type >= GGUF_T_COUNT) {
        c->bad = 1;
        return;
    }
    if (type == GGUF_T_STRING) {
        rd_str(c);
    } else if (type == GGUF_T_ARRAY) {
        uint32_t at = rd_u32(c);
        uint64_t n = rd_u64(c);
        if (depth > 2 || at >= GGUF_T_COUNT || n > 0x7fffffffu) {
            c->bad = 1;
            return;
        }
        if (at != GGUF_T_STRING && at != GGUF_T_ARRAY) {
            uint64_t bytes = n * (uint64_t)scalar_size[at];
            if (need(c, bytes)) c->p += bytes;
        } else {
            for (uint64_t i = 0; i < n && !c->bad; i++) skip_value(c, at, depth + 1);
        }
    } else if (need(c, scalar_size[type])) {
        c->p += scalar_size[type];
    }
}

const char *ggml_type_name(uint32_t type) {
    static const char *names[] = {"F32", "F16", "Q4_0", "Q4_1", "Q4_2", "Q4_3", "Q5_0", "Q5_1", "Q8_0", "Q8_1",
                                  "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K", "IQ2_XXS", "IQ2_XS", "IQ3_XXS",
                                  "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "I8", "I16", "I32", "I64", "F64",
                                  "IQ1_M", "BF16"};
    if (type < sizeof(names) / sizeof(names[0])) return names[type];
    return "unknown";
}

int gguf_parse(gguf_file *g, const uint8_t *base, size_t size) {
    memset(g, 0, sizeof(*g));
    g->base = base;
    g->size = size;
    cursor c = {base, base + size, 0};
    if (size < 4 || memcmp(base, "GGUF", 4) != 0) {
        llm_set_error("not a GGUF file (bad magic)");
        return LLM_ERR_FORMAT;
    }
    c.p += 4;
    g->version = rd_u32(&c);
    uint64_t n_tensors = rd_u64(&c);
    uint64_t n_kv = rd_u64(&c);
    if (c.bad) {
        llm_set_error("truncated GGUF file: header is incomplete (%u bytes)", (unsigned)size);
        return LLM_ERR_FORMAT;
    }
    if (g->version < 2 || g->version > 3) {
        llm_set_error("unsupported GGUF version %u (supported: 2, 3)", g->version);
        return LLM_ERR_UNSUPPORTED;
    }
    if (n_tensors > 1000000 || n_kv > 1000000) {
        llm_set_error("corrupt GGUF header: %llu tensors, %llu metadata keys", (unsigned long long)n_tensors,
                      (unsigned long long)n_kv);
        return LLM_ERR_FORMAT;
    }
    g->n_kv = (uint32_t)n_kv;
    g->n_tensors = (uint32_t)n_tensors;
    g->kv = calloc(n_kv ? n_kv : 1, sizeof(gguf_kv));
    g->tensors = calloc(n_tensors ? n_tensors : 1, sizeof(gguf_tensor));
    if (!g->kv || !g->tensors) {
        llm_set_error("out of memory reading GGUF metadata");
        gguf_free(g);
        return LLM_ERR_MEMORY;
    }
    for (uint32_t i = 0; i < g->n_kv && !c.bad; i++) {
        gguf_kv *kv = &g->kv[i];
        kv->key = rd_str(&c);
        kv->type = rd_u32(&c);
        if (c.bad) break;
        if (kv->type >= GGUF_T_COUNT) {
            llm_set_error("corrupt GGUF metadata: key '%.*s' has unknown value type %u", (int)kv->key.n, kv->key.s,
                          kv->type);
            gguf_free(g);
            return LLM_ERR_FORMAT;
        }
        kv->val = c.p;
        if (kv->type == GGUF_T_ARRAY) {
            cursor peek = c;
            kv->arr_type = rd_u32(&peek);
            kv->arr_n = (uint32_t)rd_u64(&peek);
            kv->arr = peek.p;
        }
        skip_value(&c, kv->type, 0);
    }
    if (c.bad) {
        llm_set_error("truncated GGUF file: metadata runs past the end of the file (%u bytes)", (unsigned)size);
        gguf_free(g);
        return LLM_ERR_FORMAT;
    }
    uint32_t alignment = 32;
    if (gguf_get_u32(g, "general.alignment", &alignment) && (alignment == 0 || (alignment & (alignment - 1)))) {
        llm_set_error("corrupt GGUF: general.alignment %u is not a power of two", alignment);
        gguf_free(g);
        return LLM_ERR_FORMAT;
    }
    uint64_t *offsets = calloc(g->n_tensors ? g->n_tensors : 1, sizeof(uint64_t));
    for (uint32_t i = 0; i < g->n_tensors && !c.bad; i++) {
        gguf_tensor *t = &g->tensors[i];
        t->name = rd_str(&c);
        t->n_dims = rd_u32(&c);
        if (c.bad) break;
        if (t->n_dims < 1 || t->n_dims > 4) {
            llm_set_error("corrupt GGUF: tensor '%.*s' has %u dimensions", (int)t->name.n, t->name.s, t->n_dims);
            free(offsets);
            gguf_free(g);
            return LLM_ERR_FORMAT;
        }
        for (uint32_t d = 0; d < 4; d++) t->ne[d] = 1;
        for (uint32_t d = 0; d < t->n_dims; d++) {
            uint64_t ne = rd_u64(&c);
            if (ne == 0 || ne > 0x7fffffffu) c.bad = 2;
            t->ne[d] = (uint32_t)ne;
        }
        t->type = rd_u32(&c);
        offsets[i] = rd_u64(&c);
        if (c.bad == 2) {
            llm_set_error("corrupt GGUF: tensor '%.*s' has an invalid shape", (int)t->name.n, t->name.s);
            free(offsets);
            gguf_free(g);
            return LLM_ERR_FORMAT;
        }
    }
    if (c.bad) {
        llm_set_error("truncated GGUF file: tensor table runs past the end of the file (%u bytes)", (unsigned)size);
        free(offsets);
        gguf_free(g);
        return LLM_ERR_FORMAT;
    }
    uint64_t data_start = (uint64_t)(c.p - base);
    data_start = (data_start + alignment - 1) / alignment * alignment;
    for (uint32_t i = 0; i < g->n_tensors; i++) {
        gguf_tensor *t = &g->tensors[i];
        if (!type_supported(t->type)) {
            llm_set_error("unsupported tensor type %s (id %u) for tensor '%.*s'; supported: F32, F16, Q4_0, Q8_0, "
                          "Q4_K, Q6_K",
                          ggml_type_name(t->type), t->type, (int)t->name.n, t->name.s);
            free(offsets);
            gguf_free(g);
            return LLM_ERR_UNSUPPORTED;
        }
        int bs = type_block_size(t->type);
        if (t->ne[0] % bs) {
            llm_set_error("corrupt GGUF: tensor '%.*s' row length %u is not a multiple of the %s block size %d",
                          (int)t->name.n, t->name.s, t->ne[0], ggml_type_name(t->type), bs);
            free(offsets);
            gguf_free(g);
            return LLM_ERR_FORMAT;
        }
        uint64_t bytes = (uint64_t)(t->ne[0] / bs) * type_block_bytes(t->type);
        for (int d = 1; d < 4; d++) bytes *= t->ne[d];
        uint64_t start = data_start + offsets[i];
        if (offsets[i] > size || start + bytes > size || bytes > size) {
            llm_set_error("truncated GGUF file: data of tensor '%.*s' ends at byte %llu but the file has %u bytes",
                          (int)t->name.n, t->name.s, (unsigned long long)(start + bytes), (unsigned)size);
            free(offsets);
            gguf_free(g);
            return LLM_ERR_FORMAT;
        }
        t->data = base + start;
        t->nbytes = (size_t)bytes;
    }
    free(offsets);
    return LLM_OK;
}

void gguf_free(gguf_file *g) {
    free(g->kv);
    free(g->tensors);
    g->kv = NULL;
    g->tensors = NULL;
}

static int streq(strv a, const char *b) {
    size_t n = strlen(b);
    return a.n == n && memcmp(a.s, b, n) == 0;
}

const gguf_kv *gguf_find(const gguf_file *g, const char *key) {
    for (uint32_t i = 0; i < g->n_kv; i++)
        if (streq(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

const gguf_tensor *gguf_tensor_find(const gguf_file *g, const char *name) {
    for (uint32_t i = 0; i < g->n_tensors; i++)
        if (streq(g->tensors[i].name, name)) return &g->tensors[i];
    return NULL;
}

int gguf_get_u32(const gguf_file *g, const char *key, uint32_t *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return 0;
    const uint8_t *p = kv->val;
    uint64_t u = 0;
    int64_t s = 0;
    switch (kv->type) {
    case GGUF_T_U8: u = p[0]; break;
    case GGUF_T_I8: s = (int8_t)p[0]; u = s < 0 ? 0 : (uint64_t)s; break;
    case GGUF_T_U16: { uint16_t v; memcpy(&v, p, 2); u = v; } break;
    case GGUF_T_I16: { int16_t v; memcpy(&v, p, 2); u = v < 0 ? 0 : (uint64_t)v; } break;
    case GGUF_T_U32: { uint32_t v; memcpy(&v, p, 4); u = v; } break;
    case GGUF_T_I32: { int32_t v; memcpy(&v, p, 4); if (v < 0) return 0; u = (uint64_t)v; } break;
    case GGUF_T_U64: memcpy(&u, p, 8); break;
    case GGUF_T_I64: memcpy(&s, p, 8); if (s < 0) return 0; u = (uint64_t)s; break;
    default: return 0;
    }
    *out = u > 0xffffffffu ? 0xffffffffu : (uint32_t)u;
    return 1;
}

int gguf_get_f32(const gguf_file *g, const char *key, float *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type == GGUF_T_F32) {
        memcpy(out, kv->val, 4);
        return 1;
    }
    if (kv->type == GGUF_T_F64) {
        double d;
        memcpy(&d, kv->val, 8);
        *out = (float)d;
        return 1;
    }
    uint32_t u;
    if (gguf_get_u32(g, key, &u)) {
        *out = (float)u;
        return 1;
    }
    return 0;
}

int gguf_get_bool(const gguf_file *g, const char *key, int *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv) return 0;
    if (kv->type == GGUF_T_BOOL || kv->type == GGUF_T_U8 || kv->type == GGUF_T_I8) {
        *out = kv->val[0] != 0;
        return 1;
    }
    return 0;
}

int gguf_get_str(const gguf_file *g, const char *key, strv *out) {
    const gguf_kv *kv = gguf_find(g, key);
    if (!kv || kv->type != GGUF_T_STRING) return 0;
    const uint8_t *p = kv->val;
    *out = gguf_next_str(&p);
    return 1;
}

strv gguf_next_str(const uint8_t **cursor_p) {
    strv s;
    uint64_t n;
    memcpy(&n, *cursor_p, 8);
    s.n = (uint32_t)n;
    s.s = (const char *)(*cursor_p + 8);
    *cursor_p += 8 + n;
    return s;
}
