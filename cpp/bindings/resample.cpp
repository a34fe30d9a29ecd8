#include "kernels/resample.h"

#include <string>

#include "bindings/common.h"

namespace fastattn {

namespace py = pybind11;

namespace {

// A tap-index table: C-contiguous, aligned int64 (n, k) with every entry in [-1, size).
py::array index_table(const py::object& obj, const char* op, const char* name, int64_t n,
                      int64_t size) {
  const py::array a = bind::ndarray(obj, op, name);
  const py::dtype dt = a.dtype();
  const uint16_t one = 1;
  const char native = *reinterpret_cast<const unsigned char*>(&one) == 1 ? '<' : '>';
  if (!(dt.kind() == 'i' && dt.itemsize() == 8 &&
        (dt.byteorder() == '=' || dt.byteorder() == native)))
    throw py::type_error(std::string(op) + ": " + name +
                         " must be int64 (native byte order), got " + std::string(py::str(dt)));
  bind::require_ndim(a, 2, op, name);
  bind::require_c_contiguous(a, op, name);
  if (!(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
    throw py::value_error(std::string(op) + ": " + name + " must be aligned");
  if (a.shape(0) != n)
    throw py::value_error(std::string(op) + ": " + name + " has shape " + bind::shape_str(a) +
                          ", expected " + std::to_string(n) + " rows");
  const int64_t* p = static_cast<const int64_t*>(a.data());
  for (py::ssize_t i = 0; i < a.size(); ++i)
    if (p[i] < -1 || p[i] >= size)
      throw py::value_error(std::string(op) + ": " + name + " holds " + std::to_string(p[i]) +
                            ", expected indices in [-1, " + std::to_string(size) + ")");
  return a;
}

// sum: float32 C-contiguous weights of the index table's shape; max: None.
const float* weight_table(const py::object& obj, const py::array& index, const char* op,
                          const char* name, bool sum) {
  if (!sum) {
    if (!obj.is_none())
      throw py::value_error(std::string(op) + ": " + name + " must be None for reduce='max'");
    return nullptr;
  }
  if (obj.is_none())
    throw py::value_error(std::string(op) + ": " + name + " is required for reduce='sum'");
  const py::array w = bind::float32_array(obj, op, name);
  bind::require_c_contiguous(w, op, name);
  bind::require_same_shape(index, w, op, "its index table", name);
  return static_cast<const float*>(w.data());
}

}  // namespace

void bind_resample(py::module_& m) {
  m.def("resample", [](const py::object& x_obj, const py::object& out_obj,
                       const py::object& row_index_obj, const py::object& row_weight_obj,
                       const py::object& col_index_obj, const py::object& col_weight_obj,
                       const std::string& reduce) {
    const char* op = "resample";
    if (reduce != "sum" && reduce != "max")
      throw py::value_error(std::string(op) + ": reduce must be 'sum' or 'max', got '" + reduce +
                            "'");
    const bool sum = reduce == "sum";
    const py::array x = bind::ndarray(x_obj, op, "x"), out = bind::ndarray(out_obj, op, "out");
    bind::require_contiguous_float32(x, op, "x");
    bind::require_ndim(x, 3, op, "x");
    bind::require_contiguous_float32(out, op, "out");
    bind::require_writable(out, op, "out");
    bind::require_ndim(out, 3, op, "out");
    if (out.shape(0) != x.shape(0))
      throw py::value_error(std::string(op) + ": out has shape " + bind::shape_str(out) +
                            ", expected " + std::to_string(x.shape(0)) + " planes as x " +
                            bind::shape_str(x));
    const int64_t P = x.shape(0), H = x.shape(1), W = x.shape(2);
    const int64_t OH = out.shape(1), OW = out.shape(2);
    const py::array ri = index_table(row_index_obj, op, "row_index", OH, H);
    const py::array ci = index_table(col_index_obj, op, "col_index", OW, W);
    const float* rw = weight_table(row_weight_obj, ri, op, "row_weight", sum);
    const float* cw = weight_table(col_weight_obj, ci, op, "col_weight", sum);
    bind::require_separate(out, x, op, "out", "x", false);
    bind::require_separate(out, ri, op, "out", "row_index", false);
    bind::require_separate(out, ci, op, "out", "col_index", false);
    if (sum) {
      bind::require_separate(out, py::reinterpret_borrow<py::array>(row_weight_obj), op, "out",
                             "row_weight", false);
      bind::require_separate(out, py::reinterpret_borrow<py::array>(col_weight_obj), op, "out",
                             "col_weight", false);
    }
    const auto fn = kernels<ResampleKernels>().resample;
    const float* xf = static_cast<const float*>(x.data());
    float* of = bind::mutable_floats(out);
    const int64_t* rip = static_cast<const int64_t*>(ri.data());
    const int64_t* cip = static_cast<const int64_t*>(ci.data());
    const int64_t ky = ri.shape(1), kx = ci.shape(1);
    const ResampleReduce r = sum ? ResampleReduce::sum : ResampleReduce::max;
    py::gil_scoped_release release;
    fn(xf, of, P, H, W, OH, OW, rip, rw, ky, cip, cw, kx, r);
  }, py::arg("x"), py::arg("out"), py::arg("row_index"), py::arg("row_weight"),
     py::arg("col_index"), py::arg("col_weight"), py::arg("reduce"),
     "Separable resampling of x (planes, H, W) into out (planes, OH, OW) with per-axis tap "
     "tables (index -1 = no tap); reduce 'sum' (weighted) or 'max'.");
}

}  // namespace fastattn
