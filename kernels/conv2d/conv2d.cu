// The two gathers of conv2d's CUDA version (kernels/conv2d/cuda.py, which also explains the
// layouts): im2col, which lays the input's windows out as the columns of a matrix product,
// and col2im, its adjoint. Both take the kernel's taps as a list of shifts (dy, dx), the
// input pixel a tap reads relative to (p * stride_h, q * stride_w), so that masked_conv2d
// runs the same two kernels on only the taps its mask keeps.
//
// Column row k = c * taps + t holds channel c read at tap t; an image's rows hold its
// out_h * out_w output pixels. One thread per column entry in im2col and per input pixel in
// col2im, consecutive threads on consecutive entries of what they write, so that a warp's
// stores are coalesced. col2im is a gather, not a scatter: each input pixel adds up the
// column entries that read it, tap after tap, in one fixed order, with no atomics, so the
// input gradient has the same bits on every run.
//
// Sizes and indices are int: cuda.py cuts the batch so that every array a launch indexes
// has fewer than 2^31 entries. Compiled with -Dreal=float or -Dreal=double
// (kernels/cudasource.py).

// cols[n * image_step + k * row_step + pixel * pixel_step] = x[n, c, y, x'] for the chunk's
// images n, rows k = c * taps + t and output pixels (p, q), with (y, x') = (p * stride_h,
// q * stride_w) + shifts[t], and 0 where that falls in the padding; x is (images, channels,
// height, width), count = images * channels * taps * out_h * out_w. Threads run along the
// output pixels (rows_fastest = 0) or along the rows (rows_fastest = 1), whichever index
// has pixel_step or row_step 1, so that the writes are coalesced in either layout.
extern "C" __global__ void im2col(const real* __restrict__ x,
                                  const int* __restrict__ shifts, real* __restrict__ cols,
                                  int count, int channels, int height, int width, int taps,
                                  int out_h, int out_w, int stride_h, int stride_w,
                                  int image_step, int row_step, int pixel_step,
                                  int rows_fastest) {
    int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    if (i >= count) {
        return;
    }
    int pixels = out_h * out_w, rows = channels * taps;
    int n, k, pixel;
    if (rows_fastest) {
        k = i % rows;
        pixel = (i / rows) % pixels;
        n = i / rows / pixels;
    } else {
        pixel = i % pixels;
        k = (i / pixels) % rows;
        n = i / pixels / rows;
    }
    int c = k / taps, t = k % taps;
    int y = (pixel / out_w) * stride_h + shifts[2 * t];
    int x_ = (pixel % out_w) * stride_w + shifts[2 * t + 1];
    real value = 0;
    if (y >= 0 && y < height && x_ >= 0 && x_ < width) {
        value = x[((n * channels + c) * height + y) * width + x_];
    }
    cols[n * image_step + k * row_step + pixel * pixel_step] = value;
}

// gx[n, c, y, x'] = the sum over taps t of cols[n, c * taps + t, p * out_w + q] for the
// output pixel (p, q) whose tap t reads (y, x'), where there is one: (y, x') - shifts[t]
// must be a whole multiple (p * stride_h, q * stride_w) of the stride inside the output.
// cols is (images, channels * taps, out_h * out_w), gx (images, channels, height, width),
// count = images * channels * height * width. Pixels that no window covers get 0.
extern "C" __global__ void col2im(const real* __restrict__ cols,
                                  const int* __restrict__ shifts, real* __restrict__ gx,
                                  int count, int channels, int height, int width, int taps,
                                  int out_h, int out_w, int stride_h, int stride_w) {
    int i = static_cast<int>(blockIdx.x * blockDim.x + threadIdx.x);
    if (i >= count) {
        return;
    }
    int x_ = i % width, y = (i / width) % height, plane = i / width / height;  // n * C + c
    const real* rows = cols + plane * taps * out_h * out_w;
    real sum = 0;
    for (int t = 0; t < taps; ++t) {
        int dy = y - shifts[2 * t], dx = x_ - shifts[2 * t + 1];
        if (dy < 0 || dx < 0 || dy % stride_h != 0 || dx % stride_w != 0) {
            continue;
        }
        int p = dy / stride_h, q = dx / stride_w;
        if (p < out_h && q < out_w) {
            sum += rows[(t * out_h + p) * out_w + q];
        }
    }
    gx[i] = sum;
}
