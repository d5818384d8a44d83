// Softmax attention on the GPU, FlashAttention-style (Dao et al., 2022; FlashAttention-2,
// Dao, 2023), in float32 or float64 on the CUDA cores. kernels/attention/cuda.py launches
// these kernels and explains the design; this file is compiled once per `real` and per
//
//   -DHEAD_DIM=d   the head size, 1..128. Tiles are padded with zeros to DP columns
//                  (16, 32, 64 or 128), so that every loop has a fixed length;
//   -DROWS=r       the rows of a tile each thread owns: a tile has 16 ROWS rows;
//   -DCOLS=c       the score columns each thread owns: a tile has 16 COLS columns.
//
// A block's 256 threads are a 16 x 16 grid: ty = threadIdx.x / 16 owns the rows
// ty ROWS + i, tx = threadIdx.x % 16 the score columns tx + 16 j and DP / 16 head columns
// (column() below). The 16 threads of one ty form a half-warp, so a row's maximum and sum
// take four shuffles. A thread's register tile of ROWS x COLS scores costs ROWS + COLS
// 16-byte loads from shared memory per ROWS x COLS x 4 multiply-adds (float32).
//
// Shared memory tiles are (rows, DP + PACK): rows 4 banks apart (mod 32), so the 16-byte
// loads of the 8 threads of a quarter-warp, each from its own row (tx + 16 j), fall in
// distinct banks; loads along one row (the head columns) are consecutive. A simulation of
// every load and store of these kernels counted no bank conflicts there, beyond 2-way ones
// in the global-to-shared copies at d <= 16.

#ifndef HEAD_DIM
#define HEAD_DIM 64
#endif
#ifndef ROWS
#define ROWS 4
#endif
#ifndef COLS
#define COLS 4
#endif

static constexpr int THREADS = 256;
static constexpr int LANES = 16;  // threads along a row of the thread grid
static constexpr int D = HEAD_DIM;
static constexpr int DP = D <= 16 ? 16 : D <= 32 ? 32 : D <= 64 ? 64 : 128;
static constexpr int PACK = 16 / (int)sizeof(real);  // reals in a 16-byte load
static constexpr int LD = DP + PACK;  // the row stride of a (rows, DP) tile
static constexpr int CN = DP / LANES;  // head columns a thread owns
static constexpr int VEC = CN < PACK ? CN : PACK;  // of which side by side in memory
static constexpr int TILE_R = LANES * ROWS;
static constexpr int TILE_C = LANES * COLS;
static constexpr int LDC = TILE_C + PACK;  // the row stride of a (rows, TILE_C) tile

static_assert(D >= 1 && D <= 128, "HEAD_DIM must be 1..128");
static_assert(COLS % PACK == 0, "a thread's COLS adjacent reals must fill 16-byte loads");

// the shared memory of each kernel, as carved at its start (cuda.py asks for as much)
static constexpr int FORWARD_REALS = TILE_R * LD + 2 * TILE_C * LD + TILE_R * LDC;
static constexpr int BACKWARD_REALS =
    2 * TILE_R * LD + 2 * TILE_C * LD + 2 * TILE_R * LDC + 2 * TILE_C;

// For float32, two blocks of a kernel on an SM where their shared memory fits (228 KiB an
// SM, 1 KiB of it reserved per block): __launch_bounds__ then holds ptxas to the 128
// registers that two blocks need, rather than whatever its heuristics choose (one register
// over 128 would halve the warps an SM runs). Not for float64, where the bound made the
// forward spill registers at d <= 32 (NVRTC 13.0). (Constants, not a constexpr function:
// NVRTC takes a function without __device__ for host code, which it refuses.)
static constexpr bool FLOAT32 = sizeof(real) == 4;
static constexpr int FORWARD_BLOCKS = FLOAT32 && FORWARD_REALS * 4 <= 113 * 1024 ? 2 : 1;
static constexpr int BACKWARD_BLOCKS = FLOAT32 && BACKWARD_REALS * 4 <= 113 * 1024 ? 2 : 1;

template <int BYTES>
struct alignas(BYTES) Bytes {
    real v[BYTES / sizeof(real)];
};

extern __shared__ Bytes<16> shared_memory[];

__device__ __forceinline__ real minus_infinity()
{
    return -real(__int_as_float(0x7f800000));
}

// to[0..N) = from[0..N), in 16-byte loads (or one 8-byte load) where N reals fill them; the
// callers keep `from` aligned to that size
template <int N>
__device__ __forceinline__ void load(real* to, const real* from)
{
    constexpr int bytes = N * (int)sizeof(real);
    if constexpr (bytes % 16 == 0) {
#pragma unroll
        for (int n = 0; n < N; n += PACK) {
            const Bytes<16> b = *reinterpret_cast<const Bytes<16>*>(from + n);
#pragma unroll
            for (int i = 0; i < PACK; ++i) to[n + i] = b.v[i];
        }
    } else if constexpr (bytes == 8) {
        const Bytes<8> b = *reinterpret_cast<const Bytes<8>*>(from);
#pragma unroll
        for (int i = 0; i < N; ++i) to[i] = b.v[i];
    } else {
#pragma unroll
        for (int i = 0; i < N; ++i) to[i] = from[i];
    }
}

// the head column of a thread's e-th output column: runs of VEC, the 16 threads' runs side
// by side, so that a row's loads are consecutive across the half-warp
__device__ __forceinline__ int column(int e, int tx)
{
    return e / VEC * (LANES * VEC) + tx * VEC + e % VEC;
}

// rows [row0, row0 + R) of an (n, D) matrix, times `factor`, into an (R, DP) tile of stride
// LD; zeros past row n and column D, so that the padding adds nothing to any product
template <int R>
__device__ void load_tile(real* tile, const real* from, int row0, int n, real factor)
{
    constexpr int GROUP = D % PACK == 0 ? PACK : 1;  // 16-byte loads where rows are aligned
    constexpr int PER_ROW = DP / GROUP;
    for (int i = threadIdx.x; i < R * PER_ROW; i += THREADS) {
        const int r = i / PER_ROW, c = i % PER_ROW * GROUP;
        real x[GROUP];
        if (row0 + r < n && c < D) {
            load<GROUP>(x, from + (long long)(row0 + r) * D + c);
        } else {
#pragma unroll
            for (int g = 0; g < GROUP; ++g) x[g] = 0;
        }
#pragma unroll
        for (int g = 0; g < GROUP; ++g) tile[r * LD + c + g] = x[g] * factor;
    }
}

// The three tile products. Their outer loops stay rolled: unrolled, ptxas hoisted the loads
// of several steps and needed more than 128 registers (spilling at some head sizes), and
// one step already holds ROWS x COLS x PACK independent multiply-adds.

// acc[i][j] = sum over k < DP of a[(ty ROWS + i) LD + k] b[(tx + 16 j) LD + k]: rows of two
// (rows, DP) tiles multiplied, as S = Q K^T
__device__ __forceinline__ void rows_times_rows(real (&acc)[ROWS][COLS], const real* a,
                                                const real* b, int ty, int tx)
{
#pragma unroll
    for (int i = 0; i < ROWS; ++i) {
#pragma unroll
        for (int j = 0; j < COLS; ++j) acc[i][j] = 0;
    }
#pragma unroll 1
    for (int k = 0; k < DP; k += PACK) {
        real x[ROWS][PACK], y[COLS][PACK];
#pragma unroll
        for (int i = 0; i < ROWS; ++i) load<PACK>(x[i], a + (ty * ROWS + i) * LD + k);
#pragma unroll
        for (int j = 0; j < COLS; ++j) load<PACK>(y[j], b + (tx + LANES * j) * LD + k);
#pragma unroll
        for (int i = 0; i < ROWS; ++i) {
#pragma unroll
            for (int j = 0; j < COLS; ++j) {
#pragma unroll
                for (int p = 0; p < PACK; ++p) acc[i][j] += x[i][p] * y[j][p];
            }
        }
    }
}

// acc[i][e] += sum over k < K of a[(ty ROWS + i) LDA + k] b[k LD + column(e)]: rows of a
// (rows, K) tile times a (K, DP) tile, as O += P V
template <int K, int LDA>
__device__ __forceinline__ void rows_times_tile(real (&acc)[ROWS][CN], const real* a,
                                                const real* b, int ty, int tx)
{
#pragma unroll 2
    for (int k = 0; k < K; k += PACK) {
        real x[ROWS][PACK];
#pragma unroll
        for (int i = 0; i < ROWS; ++i) load<PACK>(x[i], a + (ty * ROWS + i) * LDA + k);
#pragma unroll
        for (int p = 0; p < PACK; ++p) {
            real y[CN];
#pragma unroll
            for (int e = 0; e < CN; e += VEC) {
                load<VEC>(y + e, b + (k + p) * LD + column(e, tx));
            }
#pragma unroll
            for (int i = 0; i < ROWS; ++i) {
#pragma unroll
                for (int e = 0; e < CN; ++e) acc[i][e] += x[i][p] * y[e];
            }
        }
    }
}

// acc[i][e] = sum over r < K of a[r LDA + ty COLS + i] b[r LD + column(e)]: columns of a
// (K, 16 COLS) tile times a (K, DP) tile, as dQ = dS K from the transposed dS
template <int K, int LDA>
__device__ __forceinline__ void columns_times_tile(real (&acc)[COLS][CN], const real* a,
                                                   const real* b, int ty, int tx)
{
#pragma unroll
    for (int i = 0; i < COLS; ++i) {
#pragma unroll
        for (int e = 0; e < CN; ++e) acc[i][e] = 0;
    }
#pragma unroll 1
    for (int r = 0; r < K; ++r) {
        real x[COLS], y[CN];
        load<COLS>(x, a + r * LDA + ty * COLS);
#pragma unroll
        for (int e = 0; e < CN; e += VEC) load<VEC>(y + e, b + r * LD + column(e, tx));
#pragma unroll
        for (int i = 0; i < COLS; ++i) {
#pragma unroll
            for (int e = 0; e < CN; ++e) acc[i][e] += x[i] * y[e];
        }
    }
}

// x reduced over the 16 threads of a half-warp, every one of them getting the result
__device__ __forceinline__ real half_warp_max(real x)
{
#pragma unroll
    for (int lane = LANES / 2; lane > 0; lane /= 2) {
        x = fmax(x, __shfl_xor_sync(0xffffffffu, x, lane));
    }
    return x;
}

__device__ __forceinline__ real half_warp_sum(real x)
{
#pragma unroll
    for (int lane = LANES / 2; lane > 0; lane /= 2) {
        x += __shfl_xor_sync(0xffffffffu, x, lane);
    }
    return x;
}

// Block (bh, y): the TILE_R queries of query tile gridDim.y - 1 - y of head bh against the
// key tiles of TILE_C keys in turn (the last query tiles go first: under `causal` they see
// the most keys, and the short ones fill in behind them). Per row, the running maximum m,
// the running sum l of exp(S - m) over this thread's columns (summed over the half-warp at
// the end) and the output, all in registers. Shared memory: Q scale (TILE_R, LD), K and V
// (TILE_C, LD), P (TILE_R, LDC).
extern "C" __global__ void __launch_bounds__(THREADS, FORWARD_BLOCKS)
attention_forward(const real* q, const real* k, const real* v, real* out, real* lse, int tq,
                  int tk, int causal, real scale)
{
    real* qs = reinterpret_cast<real*>(shared_memory);
    real* ks = qs + TILE_R * LD;
    real* vs = ks + TILE_C * LD;
    real* ps = vs + TILE_C * LD;
    const int tx = threadIdx.x % LANES, ty = threadIdx.x / LANES;
    const long long bh = blockIdx.x;
    const int q0 = (gridDim.y - 1 - blockIdx.y) * TILE_R;
    q += bh * tq * D;
    out += bh * tq * D;
    lse += bh * tq;
    k += bh * tk * D;
    v += bh * tk * D;

    load_tile<TILE_R>(qs, q, q0, tq, scale);
    real m[ROWS], l[ROWS], o[ROWS][CN];
#pragma unroll
    for (int i = 0; i < ROWS; ++i) {
        m[i] = minus_infinity();
        l[i] = 0;
#pragma unroll
        for (int e = 0; e < CN; ++e) o[i][e] = 0;
    }
    // under `causal` no query of the tile sees a key past its last query
    const int k_end = causal ? min(tk, min(tq, q0 + TILE_R)) : tk;
    for (int k0 = 0; k0 < k_end; k0 += TILE_C) {
        __syncthreads();  // all are done with the last key tile (and Q is in)
        load_tile<TILE_C>(ks, k, k0, tk, real(1));
        load_tile<TILE_C>(vs, v, k0, tk, real(1));
        __syncthreads();
        real s[ROWS][COLS];
        rows_times_rows(s, qs, ks, ty, tx);
#pragma unroll
        for (int i = 0; i < ROWS; ++i) {
            const int row = q0 + ty * ROWS + i;
            real top = minus_infinity();
#pragma unroll
            for (int j = 0; j < COLS; ++j) {
                const int key = k0 + tx + LANES * j;
                if (key >= tk || (causal && key > row)) s[i][j] = minus_infinity();
                top = fmax(top, s[i][j]);
            }
            const real m_new = fmax(m[i], half_warp_max(top));
            // a row with no key yet has m = -inf: shift by 0, so that exp gives 0, not nan
            const real shift = m_new == minus_infinity() ? real(0) : m_new;
            const real alpha = exp(m[i] - shift);
            m[i] = m_new;
            l[i] *= alpha;
#pragma unroll
            for (int e = 0; e < CN; ++e) o[i][e] *= alpha;
#pragma unroll
            for (int j = 0; j < COLS; ++j) {
                const real p = exp(s[i][j] - shift);
                l[i] += p;
                ps[(ty * ROWS + i) * LDC + tx + LANES * j] = p;
            }
        }
        __syncthreads();
        rows_times_tile<TILE_C, LDC>(o, ps, vs, ty, tx);
    }
#pragma unroll
    for (int i = 0; i < ROWS; ++i) {
        const real total = half_warp_sum(l[i]);
        const int row = q0 + ty * ROWS + i;
        if (row >= tq) continue;
        const real divisor = total > 0 ? total : real(1);
#pragma unroll
        for (int e = 0; e < CN; ++e) {
            const int c = column(e, tx);
            if (c < D) out[(long long)row * D + c] = o[i][e] / divisor;
        }
        if (tx == 0) lse[row] = total > 0 ? m[i] + log(total) : minus_infinity();
    }
}

// delta[row] = sum over the row of a * b (rowsum(dO * O) for the backward), a warp a row
extern "C" __global__ void __launch_bounds__(THREADS)
attention_row_dot(const real* a, const real* b, real* delta, int rows)
{
    const int row = blockIdx.x * (THREADS / 32) + threadIdx.x / 32;
    const int lane = threadIdx.x % 32;
    if (row >= rows) return;
    a += (long long)row * D;
    b += (long long)row * D;
    real sum = 0;
    for (int c = lane; c < D; c += 32) sum += a[c] * b[c];
#pragma unroll
    for (int step = 16; step > 0; step /= 2) sum += __shfl_xor_sync(0xffffffffu, sum, step);
    if (lane == 0) delta[row] = sum;
}

// Block (bh, y): the TILE_R keys of key tile y of head bh against the query tiles of TILE_C
// queries in turn (FlashAttention-2's backward). Per query tile, as (key, query) tiles:
// P^T = exp(K (Q scale)^T - lse), dP^T = V dO^T and dS^T = P^T (dP^T - delta). dV += P^T dO
// and dK += dS^T (Q scale) stay in registers; dQ gets scale dS K, added to dq (zeroed by
// the caller) with atomics, as every key tile adds to every query row. The blocks of a head
// start their walk over the query tiles at different tiles, so that they seldom add to the
// same rows of dq at once. Shared memory: K and V (TILE_R, LD), Q scale and dO (TILE_C,
// LD), P^T and dS^T (TILE_R, LDC), lse and delta (TILE_C).
extern "C" __global__ void __launch_bounds__(THREADS, BACKWARD_BLOCKS)
attention_backward(const real* q, const real* k, const real* v, const real* gout,
                   const real* lse, const real* delta, real* dq, real* dk, real* dv, int tq,
                   int tk, int causal, real scale)
{
    real* ks = reinterpret_cast<real*>(shared_memory);
    real* vs = ks + TILE_R * LD;
    real* qs = vs + TILE_R * LD;
    real* gs = qs + TILE_C * LD;
    real* ps = gs + TILE_C * LD;
    real* dss = ps + TILE_R * LDC;
    real* lses = dss + TILE_R * LDC;
    real* deltas = lses + TILE_C;
    const int tx = threadIdx.x % LANES, ty = threadIdx.x / LANES;
    const long long bh = blockIdx.x;
    const int k0 = blockIdx.y * TILE_R;
    q += bh * tq * D;
    gout += bh * tq * D;
    dq += bh * tq * D;
    lse += bh * tq;
    delta += bh * tq;
    k += bh * tk * D;
    v += bh * tk * D;
    dk += bh * tk * D;
    dv += bh * tk * D;

    load_tile<TILE_R>(ks, k, k0, tk, real(1));
    load_tile<TILE_R>(vs, v, k0, tk, real(1));
    real dk_acc[ROWS][CN], dv_acc[ROWS][CN];
#pragma unroll
    for (int i = 0; i < ROWS; ++i) {
#pragma unroll
        for (int e = 0; e < CN; ++e) dk_acc[i][e] = dv_acc[i][e] = 0;
    }
    // under `causal` only the queries from the tile's first key on see it
    const int first = causal ? k0 / TILE_C : 0;
    const int count = (tq + TILE_C - 1) / TILE_C - first;
    for (int step = 0; step < count; ++step) {
        const int q0 = (first + (step + blockIdx.y) % count) * TILE_C;
        __syncthreads();  // all are done with the last query tile (and K and V are in)
        load_tile<TILE_C>(qs, q, q0, tq, scale);
        load_tile<TILE_C>(gs, gout, q0, tq, real(1));
        for (int i = threadIdx.x; i < TILE_C; i += THREADS) {
            lses[i] = q0 + i < tq ? lse[q0 + i] : real(0);
            deltas[i] = q0 + i < tq ? delta[q0 + i] : real(0);
        }
        __syncthreads();
        real s[ROWS][COLS], dp[ROWS][COLS];
        rows_times_rows(s, ks, qs, ty, tx);
        rows_times_rows(dp, vs, gs, ty, tx);
#pragma unroll
        for (int i = 0; i < ROWS; ++i) {
            const int key = k0 + ty * ROWS + i;
#pragma unroll
            for (int j = 0; j < COLS; ++j) {
                const int col = tx + LANES * j, query = q0 + col;
                const bool seen = key < tk && query < tq && !(causal && key > query);
                const real p = seen ? exp(s[i][j] - lses[col]) : real(0);
                ps[(ty * ROWS + i) * LDC + col] = p;
                dss[(ty * ROWS + i) * LDC + col] = p * (dp[i][j] - deltas[col]);
            }
        }
        __syncthreads();
        rows_times_tile<TILE_C, LDC>(dv_acc, ps, gs, ty, tx);
        rows_times_tile<TILE_C, LDC>(dk_acc, dss, qs, ty, tx);
        real dq_acc[COLS][CN];
        columns_times_tile<TILE_R, LDC>(dq_acc, dss, ks, ty, tx);
#pragma unroll
        for (int i = 0; i < COLS; ++i) {
            const int query = q0 + ty * COLS + i;
            if (query >= tq) continue;
#pragma unroll
            for (int e = 0; e < CN; ++e) {
                const int c = column(e, tx);
                if (c < D) atomicAdd(dq + (long long)query * D + c, dq_acc[i][e] * scale);
            }
        }
    }
#pragma unroll
    for (int i = 0; i < ROWS; ++i) {
        const int key = k0 + ty * ROWS + i;
        if (key >= tk) continue;
#pragma unroll
        for (int e = 0; e < CN; ++e) {
            const int c = column(e, tx);
            if (c < D) {
                dk[(long long)key * D + c] = dk_acc[i][e];
                dv[(long long)key * D + c] = dv_acc[i][e];
            }
        }
    }
}
