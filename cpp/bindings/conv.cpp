// conv2d / conv_transpose2d bindings. The Python wrapper (fastattn.ops.conv) resolves padding
// ("same", pairs), checks channels and sizes with the user-facing messages and makes inputs
// C-contiguous; these checks are the second line, so that no direct call into fastattn._core
// can index outside an array: every array is C-contiguous float32 with the shape the
// geometry implies, every integer is range-checked, and sizes use overflow-checked products.
#include "kernels/conv/conv.h"

#include <cstdint>
#include <string>

#include "bindings/common.h"

namespace fastattn {

namespace py = pybind11;

namespace {

// Strides, padding, dilation and groups: below 2^31, so that any sum or product of two of
// them with a size (an array's axis, < 2^48 bytes of memory) fits int64.
constexpr int64_t kMaxParam = (int64_t{1} << 31) - 1;

void require_param(int64_t v, int64_t minimum, const char* op, const char* name) {
  if (v < minimum || v > kMaxParam)
    throw py::value_error(std::string(op) + ": " + name + " must be an int in [" +
                          std::to_string(minimum) + ", " + std::to_string(kMaxParam) +
                          "], got " + std::to_string(v));
}

// A C-contiguous float32 array of ndim axes whose data pointer is float-aligned.
py::array contiguous_f32(const py::handle& obj, py::ssize_t ndim, const char* op,
                         const char* name) {
  const py::array a = bind::float32_array(obj, op, name);
  bind::require_ndim(a, ndim, op, name);
  bind::require_c_contiguous(a, op, name);
  if (reinterpret_cast<std::uintptr_t>(a.data()) % sizeof(float) != 0)
    throw py::value_error(std::string(op) + ": " + name + " must be aligned to 4 bytes");
  return a;
}

void require_shape(const py::array& a, const int64_t* shape, py::ssize_t ndim, const char* op,
                   const char* name) {
  bool same = a.ndim() == ndim;
  for (py::ssize_t i = 0; same && i < ndim; ++i) same = a.shape(i) == shape[i];
  if (same) return;
  std::string expected = "(";
  for (py::ssize_t i = 0; i < ndim; ++i)
    expected += std::to_string(shape[i]) + (i + 1 < ndim ? ", " : ndim == 1 ? ",)" : ")");
  throw py::value_error(std::string(op) + ": " + name + " has shape " + bind::shape_str(a) +
                        ", expected " + expected);
}

// The writable output, apart from every input.
py::array output(const py::handle& obj, const int64_t* shape, const char* op) {
  const py::array out = contiguous_f32(obj, 4, op, "out");
  bind::require_writable(out, op, "out");
  require_shape(out, shape, 4, op, "out");
  return out;
}

const float* optional_bias(const py::object& bias, int64_t cout, const py::array& out,
                           const char* op) {
  if (bias.is_none()) return nullptr;
  const py::array b = contiguous_f32(bias, 1, op, "bias");
  const int64_t shape[1] = {cout};
  require_shape(b, shape, 1, op, "bias");
  bind::require_separate(out, b, op, "out", "bias", false);
  return static_cast<const float*>(b.data());
}

void check_groups(int64_t groups, int64_t c, int64_t cout, const char* op) {
  require_param(groups, 1, op, "groups");
  if (c % groups != 0 || cout % groups != 0)
    throw py::value_error(std::string(op) + ": groups = " + std::to_string(groups) +
                          " must divide the input channels (" + std::to_string(c) +
                          ") and the output channels (" + std::to_string(cout) + ")");
}

constexpr const char* kConv = "conv2d";
constexpr const char* kConvT = "conv_transpose2d";

// out = conv2d(x, weight) with padding (top, bottom, left, right).
void conv2d(const py::object& x_obj, const py::object& w_obj, const py::object& bias,
            const py::object& residual, const py::object& out_obj, int64_t sh, int64_t sw,
            int64_t pt, int64_t pb, int64_t pl, int64_t pr, int64_t dh, int64_t dw,
            int64_t groups, const py::object& activation) {
  const py::array x = contiguous_f32(x_obj, 4, kConv, "x");
  const py::array w = contiguous_f32(w_obj, 4, kConv, "weight");
  require_param(sh, 1, kConv, "stride"), require_param(sw, 1, kConv, "stride");
  require_param(pt, 0, kConv, "padding"), require_param(pb, 0, kConv, "padding");
  require_param(pl, 0, kConv, "padding"), require_param(pr, 0, kConv, "padding");
  require_param(dh, 1, kConv, "dilation"), require_param(dw, 1, kConv, "dilation");
  const int64_t N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
  const int64_t Cout = w.shape(0), kh = w.shape(2), kw = w.shape(3);
  check_groups(groups, C, Cout, kConv);
  if (w.shape(1) != C / groups)
    throw py::value_error("conv2d: weight has shape " + bind::shape_str(w) + ", expected " +
                          std::to_string(C / groups) + " input channels per group (x has " +
                          std::to_string(C) + " channels, groups = " + std::to_string(groups) +
                          ")");
  if (kh < 1 || kw < 1) throw py::value_error("conv2d: the kernel must be at least 1 x 1");
  // kernel extents (kh - 1) dh + 1 <= 2^31 * 2^48: checked
  const int64_t eh = bind::checked_mul(kh - 1, dh), ew = bind::checked_mul(kw - 1, dw);
  if (eh < 0 || ew < 0 || eh + 1 > H + pt + pb || ew + 1 > W + pl + pr)
    throw py::value_error("conv2d: the dilated kernel is larger than the padded input (" +
                          std::to_string(H + pt + pb) + " x " + std::to_string(W + pl + pr) + ")");
  const int64_t OH = (H + pt + pb - eh - 1) / sh + 1, OW = (W + pl + pr - ew - 1) / sw + 1;
  const int64_t yshape[4] = {N, Cout, OH, OW};
  const py::array out = output(out_obj, yshape, kConv);
  bind::require_separate(out, x, kConv, "out", "x", false);
  bind::require_separate(out, w, kConv, "out", "weight", false);
  Conv2dArgs a{};
  a.bias = optional_bias(bias, Cout, out, kConv);
  a.activation = bind::epilogue_activation(activation, kConv);
  py::array r;
  if (!residual.is_none()) {
    r = contiguous_f32(residual, 4, kConv, "residual");
    require_shape(r, yshape, 4, kConv, "residual");
    // the kernel keeps partial sums in out: a residual sharing its memory would be overwritten
    bind::require_separate(out, r, kConv, "out", "residual", false);
    a.residual = static_cast<const float*>(r.data());
  }
  a.x = static_cast<const float*>(x.data());
  a.N = N, a.C = C, a.H = H, a.W = W;
  a.w = static_cast<const float*>(w.data());
  a.Cout = Cout, a.kh = kh, a.kw = kw;
  a.y = bind::mutable_floats(out);
  a.OH = OH, a.OW = OW, a.sh = sh, a.sw = sw, a.pt = pt, a.pl = pl, a.dh = dh, a.dw = dw;
  a.groups = groups;
  if (out.size() == 0) return;
  const auto fn = kernels<ConvKernels>().conv2d;
  py::gil_scoped_release release;
  fn(a);
}

// out = conv_transpose2d(x, weight): output size
// (H - 1) sh - 2 ph + (kh - 1) dh + output_padding + 1 (the same for the width).
void conv_transpose2d(const py::object& x_obj, const py::object& w_obj, const py::object& bias,
                      const py::object& out_obj, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                      int64_t oph, int64_t opw, int64_t dh, int64_t dw, int64_t groups) {
  const py::array x = contiguous_f32(x_obj, 4, kConvT, "x");
  const py::array w = contiguous_f32(w_obj, 4, kConvT, "weight");
  require_param(sh, 1, kConvT, "stride"), require_param(sw, 1, kConvT, "stride");
  require_param(ph, 0, kConvT, "padding"), require_param(pw, 0, kConvT, "padding");
  require_param(oph, 0, kConvT, "output_padding"), require_param(opw, 0, kConvT, "output_padding");
  require_param(dh, 1, kConvT, "dilation"), require_param(dw, 1, kConvT, "dilation");
  const int64_t N = x.shape(0), C = x.shape(1), H = x.shape(2), W = x.shape(3);
  require_param(groups, 1, kConvT, "groups");
  if (w.shape(0) != C || C % groups != 0)
    throw py::value_error("conv_transpose2d: weight has shape " + bind::shape_str(w) +
                          ", expected (" + std::to_string(C) +
                          ", Cout / groups, kh, kw) with groups dividing " + std::to_string(C));
  const int64_t Cout = bind::checked_mul(w.shape(1), groups), kh = w.shape(2), kw = w.shape(3);
  if (Cout < 0) throw py::value_error("conv_transpose2d: output channels overflow");
  if (kh < 1 || kw < 1)
    throw py::value_error("conv_transpose2d: the kernel must be at least 1 x 1");
  if (H < 1 || W < 1)
    throw py::value_error("conv_transpose2d: x must have at least one pixel, got shape " +
                          bind::shape_str(x));
  // (H - 1) sh < 2^48 * 2^31 may overflow: checked
  const int64_t a_h = bind::checked_mul(H - 1, sh), a_w = bind::checked_mul(W - 1, sw);
  const int64_t e_h = bind::checked_mul(kh - 1, dh), e_w = bind::checked_mul(kw - 1, dw);
  if (a_h < 0 || a_w < 0 || e_h < 0 || e_w < 0 || a_h > (int64_t{1} << 61) ||
      a_w > (int64_t{1} << 61) || e_h > (int64_t{1} << 61) || e_w > (int64_t{1} << 61))
    throw py::value_error("conv_transpose2d: the output size overflows");
  const int64_t OH = a_h - 2 * ph + e_h + oph + 1, OW = a_w - 2 * pw + e_w + opw + 1;
  if (OH < 1 || OW < 1)
    throw py::value_error("conv_transpose2d: the output size " + std::to_string(OH) + " x " +
                          std::to_string(OW) + " is too small (padding too large)");
  const int64_t yshape[4] = {N, Cout, OH, OW};
  const py::array out = output(out_obj, yshape, kConvT);
  bind::require_separate(out, x, kConvT, "out", "x", false);
  bind::require_separate(out, w, kConvT, "out", "weight", false);
  ConvTranspose2dArgs a{};
  a.bias = optional_bias(bias, Cout, out, kConvT);
  a.x = static_cast<const float*>(x.data());
  a.N = N, a.C = C, a.H = H, a.W = W;
  a.w = static_cast<const float*>(w.data());
  a.Cout = Cout, a.kh = kh, a.kw = kw;
  a.y = bind::mutable_floats(out);
  a.OH = OH, a.OW = OW, a.sh = sh, a.sw = sw, a.pt = ph, a.pl = pw, a.dh = dh, a.dw = dw;
  a.groups = groups;
  if (out.size() == 0) return;
  const auto fn = kernels<ConvKernels>().conv_transpose2d;
  py::gil_scoped_release release;
  fn(a);
}

}  // namespace

void bind_conv(py::module_& m) {
  m.def("conv2d", &conv2d, py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("residual"),
        py::arg("out"), py::arg("stride_h").noconvert(), py::arg("stride_w").noconvert(),
        py::arg("pad_top").noconvert(), py::arg("pad_bottom").noconvert(),
        py::arg("pad_left").noconvert(), py::arg("pad_right").noconvert(),
        py::arg("dilation_h").noconvert(), py::arg("dilation_w").noconvert(),
        py::arg("groups").noconvert(), py::arg("activation"));
  m.def("conv_transpose2d", &conv_transpose2d, py::arg("x"), py::arg("weight"), py::arg("bias"),
        py::arg("out"), py::arg("stride_h").noconvert(), py::arg("stride_w").noconvert(),
        py::arg("pad_h").noconvert(), py::arg("pad_w").noconvert(),
        py::arg("output_padding_h").noconvert(), py::arg("output_padding_w").noconvert(),
        py::arg("dilation_h").noconvert(), py::arg("dilation_w").noconvert(),
        py::arg("groups").noconvert());
}

}  // namespace fastattn
