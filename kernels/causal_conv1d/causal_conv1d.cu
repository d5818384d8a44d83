// Causal dilated conv1d for kernels/causal_conv1d/cuda.py, written for `real` (float or
// double): the passes around its cuBLAS products that move each tap's values in time.
// Only the taps that reach inside the sequence are passed, `taps` of them, oldest first:
// tap q reads lag(q) = (taps - 1 - q) * dilation + shift steps into the past.

#define TILE 32  // gather_transposed's tile: TILE x TILE entries, TILE threads across

__device__ __forceinline__ long long lag(int q, int taps, int dilation, int shift)
{
    return (long long)(taps - 1 - q) * dilation + shift;
}

// out[n, c, t] (flat index i) = the sum over taps q of p[n, q * channels + c, t - sign *
// lag(q)], the terms whose time falls inside 0 .. length - 1. p holds every tap's product,
// (N, taps * channels, length); sign 1 moves tap q lag(q) steps later (forward), -1 earlier
// (the adjoint, grad_input). i fits an int, as out's size does (cuda.py checks): 32-bit
// divisions cost a fraction of 64-bit ones, which would rival this pass's memory traffic.
__device__ __forceinline__ real sum_taps_at(const real* p, int i, int channels, int length,
                                            int taps, int dilation, int shift, int sign)
{
    const int row = i / length;  // n * channels + c
    const int t = i - row * length;
    const int n = row / channels;
    const int c = row - n * channels;
    const real* first = p + ((long long)n * taps * channels + c) * length;
    real sum = 0;
    for (int q = 0; q < taps; ++q) {
        const long long u = t - sign * lag(q, taps, dilation, shift);
        if (u >= 0 && u < length)
            sum += first[(long long)q * channels * length + u];
    }
    return sum;
}

extern "C" __global__ void causal_conv1d_sum_taps(const real* p, real* out, int size,
                                                  int channels, int length, int taps,
                                                  int dilation, int shift, int sign)
{
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < size)
        out[i] = sum_taps_at(p, (int)i, channels, length, taps, dilation, shift, sign);
}

// The forward direction (sign 1) with the bias added in the same pass.
extern "C" __global__ void causal_conv1d_sum_taps_bias(const real* p, const real* bias,
                                                       real* out, int size, int channels,
                                                       int length, int taps, int dilation,
                                                       int shift)
{
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < size)
        out[i] = sum_taps_at(p, (int)i, channels, length, taps, dilation, shift, 1)
                 + bias[(int)i / length % channels];
}

// cols[n, t, q * channels + c] = x[n, c, t - lag(q)], zero before the start: x
// (N, channels, length) shifted by each tap and transposed to time-major, the layout in
// which one batched product gives grad_y[n] @ cols[n]. Block b of the flat grid moves the
// tile of tap q, sample n, channels c0 .. c0 + TILE - 1 and steps t0 .. t0 + TILE - 1
// through shared memory, so that both the reads (along time) and the writes (along
// channels) are consecutive; the extra column keeps the transposed reads off a single bank.
// The block is TILE x blockDim.y threads, each moving every blockDim.y-th row of the tile.
extern "C" __global__ void causal_conv1d_gather_transposed(const real* x, real* cols,
                                                           int channels, int length,
                                                           int taps, int dilation,
                                                           int shift, int tiles_t,
                                                           int tiles_c)
{
    __shared__ real tile[TILE][TILE + 1];
    long long b = blockIdx.x;
    const int t0 = (int)(b % tiles_t) * TILE;
    b /= tiles_t;
    const int c0 = (int)(b % tiles_c) * TILE;
    b /= tiles_c;
    const int q = (int)(b % taps);
    const long long n = b / taps;
    const long long shifted = lag(q, taps, dilation, shift);

    const real* xn = x + n * channels * length;
    for (int r = threadIdx.y; r < TILE; r += blockDim.y) {
        const int c = c0 + r;
        const long long t = t0 + threadIdx.x;
        real v = 0;
        if (c < channels && t < length && t >= shifted)
            v = xn[(long long)c * length + t - shifted];
        tile[r][threadIdx.x] = v;
    }
    __syncthreads();
    real* out = cols + n * length * taps * channels + (long long)q * channels;
    for (int r = threadIdx.y; r < TILE; r += blockDim.y) {
        const long long t = t0 + r;
        const int c = c0 + threadIdx.x;
        if (t < length && c < channels)
            out[t * taps * channels + c] = tile[threadIdx.x][r];
    }
}
