// Scaled dot-product attention of one (batch item, head) and CLIP's quick_gelu, vectorized: the
// Swift loops they replace took a horizontal sum per key and a libm expf per score and per value
// (8% and 5% of a ViT-B/32 forward pass on AVX-512, where the GEMMs take the rest).
// Vector extensions with target_clones (multiversion.h): the 16-float vectors become one zmm on
// AVX-512 and two ymm on AVX2.
#include "CKernels.h"
#include "multiversion.h"

#include <math.h>
#include <stddef.h>

#include "vector_math.h"

/* transpose16: T[c][r] = A[r][c] for a 16 x 16 block in 16 vectors, by swapping each bit of the row
   index with the same bit of the column index. One stage per bit M: rows r and r | M (bit M of r
   clear) exchange the elements whose column has bit M set; LOW and HIGH are the two shuffles' lane
   lists, in parentheses. */
#define LANES(...) __VA_ARGS__
#define TRANSPOSE_STAGE(M, LOW, HIGH)                                                                      \
    for (int r = 0; r < 16; r++) {                                                                         \
        if (r & (M)) continue;                                                                             \
        v16 a = rows[r], b = rows[r | (M)];                                                                \
        rows[r] = __builtin_shufflevector(a, b, LANES LOW);                                                \
        rows[r | (M)] = __builtin_shufflevector(a, b, LANES HIGH);                                         \
    }
static inline __attribute__((always_inline)) void transpose16(v16 rows[16]) {
    TRANSPOSE_STAGE(1, (0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30),
                    (1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31))
    TRANSPOSE_STAGE(2, (0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29),
                    (2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31))
    TRANSPOSE_STAGE(4, (0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27),
                    (4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31))
    TRANSPOSE_STAGE(8, (0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23),
                    (8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31))
}
#undef TRANSPOSE_STAGE
#undef LANES

long hk_attention_scratch_count(long sequence, long head_dim) {
    long padded = (sequence + 15) / 16 * 16;
    return padded * head_dim + 5 * padded;
}

/* scores[q][j] = scale * query_q . key_j for Q queries and keys [j0, j0 + 16 * V), from the keys
   transposed into [head_dim][padded] (so each step is broadcasts times whole key vectors). */
static inline __attribute__((always_inline)) void
score_block(const float *const *queries, const float *keys_t, long padded, long head_dim, float scale, long j0,
            float *scores, const int Q, const int V) {
    v16 acc[4][4];
    for (int q = 0; q < Q; q++)
        for (int v = 0; v < V; v++) acc[q][v] = (v16){0};
    for (long d = 0; d < head_dim; d++) {
        const float *row = keys_t + d * padded + j0;
        v16 k[4];
        for (int v = 0; v < V; v++) k[v] = *(const v16u *)(row + 16 * v);
        for (int q = 0; q < Q; q++) {
            v16 x = SPLAT(queries[q][d]);
            for (int v = 0; v < V; v++) acc[q][v] += x * k[v];
        }
    }
    for (int q = 0; q < Q; q++)
        for (int v = 0; v < V; v++) *(v16u *)(scores + q * padded + j0 + 16 * v) = acc[q][v] * scale;
}

/* out_q[d0 .. d0 + 16 * V) = sum_j p_q[j] value_j[...] over keys [0, key_end). */
static inline __attribute__((always_inline)) void
mix_block(const float *probabilities, long padded, const float *value, long row_stride, long key_end, long d0,
          float *const *outputs, const float *inverse, const int Q, const int V) {
    v16 acc[4][4];
    for (int q = 0; q < Q; q++)
        for (int v = 0; v < V; v++) acc[q][v] = (v16){0};
    for (long j = 0; j < key_end; j++) {
        const float *row = value + j * row_stride + d0;
        v16 x[4];
        for (int v = 0; v < V; v++) x[v] = *(const v16u *)(row + 16 * v);
        for (int q = 0; q < Q; q++) {
            v16 p = SPLAT(probabilities[q * padded + j]);
            for (int v = 0; v < V; v++) acc[q][v] += p * x[v];
        }
    }
    for (int q = 0; q < Q; q++)
        for (int v = 0; v < V; v++) *(v16u *)(outputs[q] + d0 + 16 * v) = acc[q][v] * inverse[q];
}

#define CASES_V(CALL, Q)                                                                                               \
    switch (vectors) {                                                                                                 \
    case 4: CALL(Q, 4); break;                                                                                         \
    case 3: CALL(Q, 3); break;                                                                                         \
    case 2: CALL(Q, 2); break;                                                                                         \
    default: CALL(Q, 1); break;                                                                                        \
    }
#define CASES_QV(CALL)                                                                                                 \
    switch (count) {                                                                                                   \
    case 4: CASES_V(CALL, 4) break;                                                                                    \
    case 3: CASES_V(CALL, 3) break;                                                                                    \
    case 2: CASES_V(CALL, 2) break;                                                                                    \
    default: CASES_V(CALL, 1) break;                                                                                   \
    }

MULTIVERSION
void hk_attention_head(const float *query, const float *key, const float *value, long row_stride, long sequence,
                       long head_dim, const unsigned char *key_mask, int causal, float scale, float *output,
                       long output_stride, long query_begin, long query_end, float *scratch) {
    const long padded = (sequence + 15) / 16 * 16;
    /* Keys this call can attend to: all, or (causal) up to its last query. */
    const long key_count = causal ? (query_end < sequence ? query_end : sequence) : sequence;
    const long key_padded = (key_count + 15) / 16 * 16;
    float *keys_t = scratch;                      /* [head_dim][padded] */
    float *scores = keys_t + head_dim * padded;   /* [4][padded] */
    float *key_bias = scores + 4 * padded;        /* [padded]: 0, or -inf for a masked key */
    const long vector_dims = head_dim / 16 * 16;
    /* keys_t[d][j] = key_j[d] (zeros past key_count), in 16 x 16 blocks transposed in registers. */
    for (long j0 = 0; j0 < key_padded; j0 += 16) {
        for (long d0 = 0; d0 < vector_dims; d0 += 16) {
            v16 block[16];
            for (int r = 0; r < 16; r++)
                block[r] = j0 + r < key_count ? *(const v16u *)(key + (j0 + r) * row_stride + d0) : (v16){0};
            transpose16(block);
            for (int c = 0; c < 16; c++) *(v16u *)(keys_t + (d0 + c) * padded + j0) = block[c];
        }
        for (long d = vector_dims; d < head_dim; d++)
            for (long j = j0; j < j0 + 16; j++) keys_t[d * padded + j] = j < key_count ? key[j * row_stride + d] : 0.0f;
    }
    for (long j = 0; j < key_padded; j++)
        key_bias[j] = j < key_count && (key_mask == NULL || key_mask[j] != 0) ? 0.0f : -INFINITY;

    for (long i0 = query_begin; i0 < query_end; i0 += 4) {
        const int count = (int)(query_end - i0 < 4 ? query_end - i0 : 4);
        const float *queries[4];
        float *outputs[4];
        float inverse[4];
        for (int q = 0; q < count; q++) {
            queries[q] = query + (i0 + q) * row_stride;
            outputs[q] = output + (i0 + q) * output_stride;
        }
        /* Keys the group needs: causal queries stop at their own position. */
        const long group_keys = causal ? i0 + count : key_count;
        const long group_padded = (group_keys + 15) / 16 * 16;
        for (long j0 = 0; j0 < group_padded; j0 += 64) {
            const int vectors = (int)((group_padded - j0) / 16 < 4 ? (group_padded - j0) / 16 : 4);
#define SCORE(Q, V) score_block(queries, keys_t, padded, head_dim, scale, j0, scores, Q, V)
            CASES_QV(SCORE)
#undef SCORE
        }
        /* Softmax of each row over its own keys; masked, future and padding keys get exactly 0. */
        for (int q = 0; q < count; q++) {
            float *row = scores + q * padded;
            const long own_keys = causal ? i0 + q + 1 : key_count;
            /* Masked keys (key_bias -inf) and, when causal, later ones become -inf; the peak on the way. */
            const v16i lane = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
            const v16 minus_infinity = SPLAT(-INFINITY);
            v16 peak_v = minus_infinity;
            for (long j = 0; j < group_padded; j += 16) {
                v16i keep = lane + (int)j < (int)own_keys;
                v16 s = *(v16u *)(row + j) + *(const v16u *)(key_bias + j);
                s = (v16)((keep & (v16i)s) | (~keep & (v16i)minus_infinity));
                *(v16u *)(row + j) = s;
                peak_v = __builtin_elementwise_max(peak_v, s);
            }
            float peak = -INFINITY;
            for (int l = 0; l < 16; l++) peak = peak_v[l] > peak ? peak_v[l] : peak;
            if (peak == -INFINITY) {
                for (long j = 0; j < group_padded; j++) row[j] = 0.0f;
                inverse[q] = 0.0f;
                continue;
            }
            v16 total_v = {0};
            for (long j = 0; j < group_padded; j += 16) {
                v16 s = *(v16u *)(row + j) - peak;
                /* -inf - peak = -inf: clamped to -87 inside exp, so take those lanes to zero here. */
                v16 p;
                EXP_NONPOSITIVE(p, s);
                p = (v16)((v16i)p & (s > -INFINITY));
                *(v16u *)(row + j) = p;
                total_v += p;
            }
            float total = 0.0f;
            for (int l = 0; l < 16; l++) total += total_v[l];
            inverse[q] = 1.0f / total;
        }
        for (long d0 = 0; d0 < vector_dims; d0 += 64) {
            const int vectors = (int)((vector_dims - d0) / 16 < 4 ? (vector_dims - d0) / 16 : 4);
#define MIX(Q, V) mix_block(scores, padded, value, row_stride, group_keys, d0, outputs, inverse, Q, V)
            CASES_QV(MIX)
#undef MIX
        }
        for (int q = 0; q < count; q++) {
            for (long d = vector_dims; d < head_dim; d++) {
                float acc = 0.0f;
                for (long j = 0; j < group_keys; j++) acc += scores[q * padded + j] * value[j * row_stride + d];
                outputs[q][d] = acc * inverse[q];
            }
        }
    }
}

MULTIVERSION
void hk_quick_gelu(float *x, long begin, long end) {
    long i = begin;
    for (; i + 16 <= end; i += 16) QUICK_GELU(*(v16u *)(x + i), *(v16u *)(x + i));
    for (; i < end; i++) x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}
