// The native module behind `import gradlens` (python/gradlens/): thin
// bindings over the library's functions and option structs. Keyword names and
// defaults follow the CLI's flags and scikit-learn's parameter names; the
// Python package adds only argument conversion (numpy -> torch) and
// scikit-learn's estimator conventions. Long calls release the GIL and stop
// with KeyboardInterrupt on Ctrl-C (checked between batches / iterations).
#include <torch/extension.h>

#include <algorithm>
#include <tuple>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "gradlens/analysis/cosine.h"
#include "gradlens/analysis/label_noise.h"
#include "gradlens/cluster/gmm.h"
#include "gradlens/cluster/kmeans.h"
#include "gradlens/core/blas.h"
#include "gradlens/core/check.h"
#include "gradlens/core/progress.h"
#include "gradlens/core/runtime.h"
#include "gradlens/core/strings.h"
#include "gradlens/extract/audit.h"
#include "gradlens/extract/representations.h"
#include "gradlens/hessian/loss_spectrum.h"
#include "gradlens/influence/projection.h"
#include "gradlens/influence/tracin.h"
#include "gradlens/metrics/contingency.h"
#include "gradlens/metrics/information.h"
#include "gradlens/metrics/internal.h"
#include "gradlens/metrics/matching.h"
#include "gradlens/models/checkpoint.h"
#include "gradlens/models/metadata.h"
#include "gradlens/models/torchscript.h"
#include "gradlens/pipeline/evaluate.h"
#include "gradlens/pipeline/train.h"
#include "gradlens/reduce/pca.h"
#include "gradlens/saliency/cam.h"
#include "gradlens/saliency/distribution_metrics.h"
#include "gradlens/saliency/faithfulness.h"
#include "gradlens/saliency/fixation_metrics.h"
#include "gradlens/saliency/localisation.h"
#include "gradlens/saliency/road.h"
#include "gradlens/saliency/sanity.h"

namespace py = pybind11;
using namespace gradlens;

namespace {

/// Holds OpenBLAS's own pthread pool at one thread for the duration of a call
/// and restores it after, as the gradlens command runs (core::init_runtime):
/// its idle workers otherwise busy-wait against LibTorch's OpenMP threads
/// after every BLAS or LAPACK call (measured: PCA of 6000 x 784 took 0.2 s
/// or 4-12 s depending on that race). numpy's calls between ours keep the
/// process's setting.
struct BlasOneThread : core::BlasThreadLimit {
  BlasOneThread() : core::BlasThreadLimit(1) {}
};

/// Raised (as KeyboardInterrupt) when Ctrl-C arrived during a long call.
struct Interrupted : std::exception {
  const char* what() const noexcept override { return "interrupted"; }
};

/// Called with the GIL released, between units of work: takes the GIL, runs
/// Python's signal handlers and throws Interrupted after a Ctrl-C.
void check_interrupt() {
  py::gil_scoped_acquire gil;
  if (PyErr_CheckSignals() != 0) {
    PyErr_Clear();
    throw Interrupted();
  }
}

core::ProgressFn interrupt_progress() {
  return [](const core::ProgressEvent&) { check_interrupt(); };
}

template <class E>
E pick(const std::string& flag, const std::string& value, const std::map<std::string, E>& names) {
  const auto it = names.find(value);
  if (it == names.end()) {
    std::string all;
    for (const auto& [k, v] : names) all += (all.empty() ? "" : ", ") + k;
    GRADLENS_CHECK(false, flag, ": unknown '", value, "'; use one of ", all);
  }
  return it->second;
}

metrics::AverageMethod average_method(const std::string& name) {
  return pick<metrics::AverageMethod>("average_method", name,
                                      {{"arithmetic", metrics::AverageMethod::kArithmetic},
                                       {"geometric", metrics::AverageMethod::kGeometric},
                                       {"min", metrics::AverageMethod::kMin},
                                       {"max", metrics::AverageMethod::kMax}});
}

/// Runs `fn(begin, end)` over [0, n) in batches, checking Ctrl-C between them.
template <class Fn>
void in_batches(int64_t n, int64_t batch_size, Fn fn) {
  GRADLENS_CHECK(batch_size >= 1, "batch_size must be >= 1, got ", batch_size);
  for (int64_t b = 0; b < n; b += batch_size) {
    check_interrupt();
    fn(b, std::min(n, b + batch_size));
  }
}

/// Reads `gradlens train`'s options from a dict, by the command's flag names
/// (dashes as underscores); remembers which names exist.
struct TrainOptionReader {
  const py::dict& options;
  std::vector<std::string> known;

  template <class T>
  void operator()(const char* name, T& field) {
    known.emplace_back(name);
    if (options.contains(name)) field = options[name].cast<T>();
  }
  // An enum given by its name, read with the CLI's parser.
  template <class E, class Parse>
  void named(const char* name, E& field, Parse parse) {
    known.emplace_back(name);
    if (options.contains(name)) field = parse(options[name].cast<std::string>());
  }
  void reject_unknown() const {
    for (const auto& item : options) {
      const auto key = item.first.cast<std::string>();
      if (std::find(known.begin(), known.end(), key) == known.end())
        GRADLENS_CHECK_OPTION(false, "train: unknown option '", key, "'; the options are ", core::join(known, ", "),
                              " (gradlens.train_options() lists them with their defaults)");
    }
  }
};

/// The one list of train options: flag name -> field of TrainConfig or of
/// the run's context (device, seed).
template <class Reader>
void read_train_options(Reader& r, pipeline::TrainConfig& c, pipeline::RunContext& rc) {
  auto& d = c.data;
  r("data", d.data);
  r("data_dir", d.idx_dir);
  r("image_size", d.image_size);
  r("resize", d.resize);
  r("mean", d.mean);
  r("std", d.std);
  r("input_range", d.input_range);
  r("channels", d.channels);
  r("skip_bad_images", d.skip_bad_images);
  r("test_fraction", d.test_fraction);
  r("train_per_class", d.train_per_class);
  r("test_per_class", d.test_per_class);
  r.named("subset", d.subset, [](const std::string& s) { return data::parse_subset_mode(s, "--subset"); });
  r("model", c.model);
  r("stem", c.stem);
  r("width", c.width);
  r("zero_init_residual", c.zero_init_residual);
  auto& t = c.train;
  r("epochs", t.epochs);
  r("time_budget", t.time_budget_s);
  r("batch_size", t.batch_size);
  r("optimizer", t.optimizer.name);
  r("lr", t.schedule.lr);
  r("momentum", t.optimizer.momentum);
  r("nesterov", t.optimizer.nesterov);
  r("weight_decay", t.optimizer.weight_decay);
  r.named("schedule", t.schedule.kind, train::parse_schedule);
  r("warmup_steps", t.schedule.warmup_steps);
  r("step_size", t.schedule.step_size);
  r("gamma", t.schedule.gamma);
  r("augment", t.augment);
  r("channels_last", t.channels_last);
  r("out", c.out);
  r("resume", t.resume);
  r("noisy_labels", c.noisy_labels);
  r("permute_labels", c.permute_labels);
  r("record_dynamics", c.record_dynamics);
  r("save_every_epoch", c.save_every_epoch);
  r("aum_threshold_samples", c.aum_threshold_samples);
  auto& l = c.losses;
  r("lambda_grad", l.lambda_grad);
  r.named("grad_form", l.form, train::parse_grad_form);
  r.named("grad_reduction", l.reduction, train::parse_grad_reduction);
  r("grad_source", l.source);
  r("grad_layer", l.layer);
  r("lambda_mi", l.lambda_mi);
  r("mi_estimator", l.mi_estimator);
  r("mi_dims", l.mi_dims);
  r("mi_shrinkage", l.mi_shrinkage);
  r("lambda_curv", l.lambda_curv);
  r.named("device", rc.device, core::parse_device);
  r("seed", rc.seed);
  c.train.optimizer.lr = c.train.schedule.lr;  // as the command: one learning rate
}

/// Writes the options of `c` into a dict (enums by name), for train_options().
struct TrainOptionWriter {
  py::dict out;
  template <class T>
  void operator()(const char* name, T& field) { out[name] = field; }
  template <class E, class Parse>
  void named(const char* name, E& field, Parse) { out[name] = enum_name(field); }
  static std::string enum_name(train::ScheduleKind k) { return train::schedule_name(k); }
  static std::string enum_name(train::GradForm f) { return train::grad_form_name(f); }
  static std::string enum_name(train::GradReduction r) { return train::grad_reduction_name(r); }
  static std::string enum_name(c10::Device d) { return d.str(); }
  static std::string enum_name(data::SubsetMode m) { return data::subset_mode_name(m); }
};

py::dict train_options_dict(pipeline::TrainConfig c) {
  TrainOptionWriter w;
  pipeline::RunContext rc;
  read_train_options(w, c, rc);
  return w.out;
}

using Parts = std::map<std::string, std::vector<torch::Tensor>>;

/// Each name's batch results, concatenated along the rows.
std::map<std::string, torch::Tensor> concat(const Parts& parts) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& [name, ts] : parts) out[name] = torch::cat(ts);
  return out;
}

saliency::SampledAucOptions sampled_auc(int64_t n_splits, double step_size, uint64_t seed) {
  saliency::SampledAucOptions o;
  o.n_splits = n_splits;
  o.step_size = step_size;
  o.seed = seed;
  return o;
}

torch::Tensor model_input(models::Classifier& model, const torch::Tensor& images) {
  GRADLENS_CHECK(images.dim() == 4 && images.size(1) == model.in_channels(), "images: expected a float tensor [N, ",
                 model.in_channels(), ", H, W] (normalised as the model expects), got shape ", images.sizes());
  GRADLENS_CHECK(images.is_floating_point(), "images: expected a floating-point tensor, got ", images.dtype());
  return images.to(model.device(), torch::kFloat32);
}

torch::Tensor label_input(const c10::optional<torch::Tensor>& labels, int64_t n) {
  if (!labels) return {};
  GRADLENS_CHECK(labels->dim() == 1 && labels->size(0) == n, "labels: expected [", n, "] class indices, got shape ",
                 labels->sizes());
  return labels->to(torch::kInt64);
}

/// The logits of `model`: a gradlens.Model (eval mode, no gradients, on its
/// device) or any Python callable taking and returning tensors (a torch
/// module, called as it is; the GIL is taken for each call). Build and drop
/// the function with the GIL held.
saliency::LogitsFn logits_of(const py::object& model) {
  if (py::isinstance<models::Classifier>(model)) {
    auto* c = model.cast<models::Classifier*>();
    return [c](const torch::Tensor& x) {
      models::ModeGuard eval(*c, false);
      torch::NoGradGuard ng;
      return c->forward(x.to(c->device()));
    };
  }
  GRADLENS_CHECK(PyCallable_Check(model.ptr()), "model: expected a gradlens.Model or a callable that maps images "
                 "[N, C, H, W] to logits [N, K] (e.g. a torch module in eval mode)");
  return [model](const torch::Tensor& x) {
    py::gil_scoped_acquire gil;
    return model(x).cast<torch::Tensor>();
  };
}

/// fn() with the GIL released and OpenBLAS held at one thread (what the
/// `nogil` call guard does, for bindings that build Python-held state first).
template <class Fn>
auto released(Fn&& fn) {
  BlasOneThread blas;
  py::gil_scoped_release nogil;
  return fn();
}

py::dict curve_dict(const saliency::CurveResult& r) {
  py::dict d;
  d["fractions"] = r.fractions;
  d["probs"] = r.probs;
  d["auc"] = r.auc;
  return d;
}

}  // namespace

PYBIND11_MODULE(_gradlens, m) {
  m.doc() = "gradlens native module (use the gradlens package)";
  m.attr("__torch_version__") = TORCH_VERSION;
  py::register_exception<Interrupted>(m, "Interrupted", PyExc_KeyboardInterrupt);
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const c10::Error& e) {
      PyErr_SetString(PyExc_ValueError, error_message(e).c_str());
    }
  });
  const auto nogil = py::call_guard<BlasOneThread, py::gil_scoped_release>();

  // ---- clustering -----------------------------------------------------------
  py::class_<cluster::KMeansResult>(m, "KMeansResult")
      .def_readonly("centroids", &cluster::KMeansResult::centroids)
      .def_readonly("labels", &cluster::KMeansResult::labels)
      .def_readonly("inertia", &cluster::KMeansResult::inertia)
      .def_readonly("n_iter", &cluster::KMeansResult::n_iter)
      .def_readonly("converged", &cluster::KMeansResult::converged);
  m.def(
      "kmeans_fit",
      [](const torch::Tensor& x, int64_t n_clusters, const std::string& init, int n_init, int max_iter, double tol,
         uint64_t random_state, const c10::optional<torch::Tensor>& init_centroids) {
        cluster::KMeansOptions o;
        o.k = n_clusters;
        o.init = pick<cluster::KMeansInit>("init", init,
                                           {{"k-means++", cluster::KMeansInit::kKMeansPlusPlus},
                                            {"random", cluster::KMeansInit::kRandom},
                                            {"given", cluster::KMeansInit::kGiven}});
        if (init_centroids) o.init_centroids = *init_centroids;
        o.n_init = n_init;
        o.max_iter = max_iter;
        o.tol = tol;
        o.seed = random_state;
        o.progress = interrupt_progress();
        return cluster::kmeans_fit(x, o);
      },
      py::arg("x"), py::arg("n_clusters") = 8, py::arg("init") = "k-means++", py::arg("n_init") = 1,
      py::arg("max_iter") = 300, py::arg("tol") = 1e-4, py::arg("random_state") = 0,
      py::arg("init_centroids") = py::none(), nogil);
  m.def("kmeans_predict", &cluster::kmeans_predict, py::arg("x"), py::arg("centroids"), py::arg("chunk_rows") = 4096,
        nogil);

  py::class_<cluster::GaussianMixture>(m, "GaussianMixtureResult")
      .def_readonly("weights", &cluster::GaussianMixture::weights)
      .def_readonly("means", &cluster::GaussianMixture::means)
      .def_readonly("covariances", &cluster::GaussianMixture::covariances)
      .def_readonly("precisions_cholesky", &cluster::GaussianMixture::precisions_cholesky)
      .def_readonly("lower_bound", &cluster::GaussianMixture::lower_bound)
      .def_readonly("n_iter", &cluster::GaussianMixture::n_iter)
      .def_readonly("converged", &cluster::GaussianMixture::converged)
      .def("score_samples", &cluster::gmm_score_samples, py::arg("x"), nogil)
      .def("score", &cluster::gmm_score, py::arg("x"), nogil)
      .def("predict", &cluster::gmm_predict, py::arg("x"), nogil)
      .def("predict_proba", &cluster::gmm_predict_proba, py::arg("x"), nogil)
      .def("bic", &cluster::gmm_bic, py::arg("x"), nogil)
      .def("aic", &cluster::gmm_aic, py::arg("x"), nogil);
  m.def(
      "gmm_fit",
      [](const torch::Tensor& x, int64_t n_components, const std::string& covariance_type, double tol,
         double reg_covar, int max_iter, int n_init, const std::string& init_params, uint64_t random_state) {
        cluster::GmmOptions o;
        o.n_components = n_components;
        o.covariance_type = pick<cluster::CovarianceType>("covariance_type", covariance_type,
                                                          {{"full", cluster::CovarianceType::kFull},
                                                           {"tied", cluster::CovarianceType::kTied},
                                                           {"diag", cluster::CovarianceType::kDiag},
                                                           {"spherical", cluster::CovarianceType::kSpherical}});
        o.tol = tol;
        o.reg_covar = reg_covar;
        o.max_iter = max_iter;
        o.n_init = n_init;
        o.init = pick<cluster::GmmInit>("init_params", init_params,
                                        {{"kmeans", cluster::GmmInit::kKMeans}, {"random", cluster::GmmInit::kRandom}});
        o.seed = random_state;
        o.progress = interrupt_progress();
        return cluster::gmm_fit(x, o);
      },
      py::arg("x"), py::arg("n_components") = 1, py::arg("covariance_type") = "full", py::arg("tol") = 1e-3,
      py::arg("reg_covar") = 1e-6, py::arg("max_iter") = 100, py::arg("n_init") = 1,
      py::arg("init_params") = "kmeans", py::arg("random_state") = 0, nogil);

  // ---- PCA ------------------------------------------------------------------
  py::class_<reduce::Pca>(m, "PcaResult")
      .def_readonly("mean", &reduce::Pca::mean)
      .def_readonly("components", &reduce::Pca::components)
      .def_readonly("explained_variance", &reduce::Pca::explained_variance)
      .def_readonly("explained_variance_ratio", &reduce::Pca::explained_variance_ratio)
      .def_readonly("singular_values", &reduce::Pca::singular_values)
      .def_readonly("noise_variance", &reduce::Pca::noise_variance)
      .def_readonly("n_samples", &reduce::Pca::n_samples)
      .def("transform", &reduce::pca_transform, py::arg("x"), nogil)
      .def("inverse_transform", &reduce::pca_inverse_transform, py::arg("z"), nogil);
  m.def(
      "pca_fit",
      [](const torch::Tensor& x, int64_t n_components, const std::string& svd_solver, bool whiten, int iterated_power,
         int64_t n_oversamples, uint64_t random_state) {
        reduce::PcaOptions o;
        o.n_components = n_components;
        o.solver = pick<reduce::PcaSolver>("svd_solver", svd_solver,
                                           {{"auto", reduce::PcaSolver::kExact},
                                            {"full", reduce::PcaSolver::kFullSvd},
                                            {"covariance_eigh", reduce::PcaSolver::kCovariance},
                                            {"randomized", reduce::PcaSolver::kRandomized}});
        o.whiten = whiten;
        o.n_iter = iterated_power;
        o.n_oversamples = n_oversamples;
        o.seed = random_state;
        return reduce::pca_fit(x, o);
      },
      py::arg("x"), py::arg("n_components") = 0, py::arg("svd_solver") = "auto", py::arg("whiten") = false,
      py::arg("iterated_power") = -1, py::arg("n_oversamples") = 10, py::arg("random_state") = 0, nogil);

  // ---- metrics --------------------------------------------------------------
  m.def("adjusted_rand_score", &metrics::adjusted_rand_score, py::arg("labels_true"), py::arg("labels_pred"), nogil);
  m.def(
      "normalized_mutual_info_score",
      [](const torch::Tensor& t, const torch::Tensor& p, const std::string& average_method_name) {
        return metrics::normalized_mutual_info_score(t, p, average_method(average_method_name));
      },
      py::arg("labels_true"), py::arg("labels_pred"), py::arg("average_method") = "arithmetic", nogil);
  m.def(
      "adjusted_mutual_info_score",
      [](const torch::Tensor& t, const torch::Tensor& p, const std::string& average_method_name) {
        return metrics::adjusted_mutual_info_score(t, p, average_method(average_method_name));
      },
      py::arg("labels_true"), py::arg("labels_pred"), py::arg("average_method") = "arithmetic", nogil);
  m.def(
      "silhouette_score",
      [](const torch::Tensor& x, const torch::Tensor& labels, int64_t sample_size, uint32_t random_state) {
        metrics::SilhouetteOptions o;
        o.sample_size = sample_size;
        o.seed = random_state;
        return metrics::silhouette_score(x, labels, o);
      },
      py::arg("x"), py::arg("labels"), py::arg("sample_size") = 0, py::arg("random_state") = 0, nogil);
  m.def(
      "silhouette_samples",
      [](const torch::Tensor& x, const torch::Tensor& labels) { return metrics::silhouette_samples(x, labels); },
      py::arg("x"), py::arg("labels"), nogil);
  m.def("calinski_harabasz_score", &metrics::calinski_harabasz_score, py::arg("x"), py::arg("labels"), nogil);
  m.def("davies_bouldin_score", &metrics::davies_bouldin_score, py::arg("x"), py::arg("labels"), nogil);
  m.def(
      "cluster_accuracy",
      [](const torch::Tensor& t, const torch::Tensor& p) { return metrics::cluster_accuracy(t, p).accuracy; },
      py::arg("labels_true"), py::arg("labels_pred"), nogil);

  m.def(
      "cos_sim",
      [](const torch::Tensor& x, const torch::Tensor& labels) {
        // C++ values only: the GIL is released here (no py:: objects).
        const auto r = analysis::class_cosine_similarity(x, labels);
        return std::make_tuple(r.cos_sim, r.classes, r.within, r.class_matrix);
      },
      py::arg("x"), py::arg("labels"), nogil);

  // ---- saliency metrics: per-image values [N] (MIT benchmark definitions) -
  m.def("saliency_cc", [](const torch::Tensor& p, const torch::Tensor& g) { return saliency::cc(p, g).values; },
        py::arg("prediction"), py::arg("target"), nogil);
  m.def("saliency_kld", [](const torch::Tensor& p, const torch::Tensor& g) { return saliency::kld(p, g).values; },
        py::arg("prediction"), py::arg("target"), nogil);
  m.def("saliency_sim", [](const torch::Tensor& p, const torch::Tensor& g) { return saliency::sim(p, g).values; },
        py::arg("prediction"), py::arg("target"), nogil);
  m.def("saliency_nss", [](const torch::Tensor& s, const torch::Tensor& f) { return saliency::nss(s, f).values; },
        py::arg("saliency"), py::arg("fixations"), nogil);
  m.def(
      "saliency_auc_judd",
      [](const torch::Tensor& s, const torch::Tensor& f, bool jitter, uint64_t seed) {
        saliency::AucJuddOptions o;
        o.jitter = jitter;
        o.seed = seed;
        return saliency::auc_judd(s, f, o).values;
      },
      py::arg("saliency"), py::arg("fixations"), py::arg("jitter") = false, py::arg("seed") = 0, nogil);
  m.def(
      "saliency_auc_borji",
      [](const torch::Tensor& s, const torch::Tensor& f, int64_t n_splits, double step_size, uint64_t seed) {
        return saliency::auc_borji(s, f, sampled_auc(n_splits, step_size, seed)).values;
      },
      py::arg("saliency"), py::arg("fixations"), py::arg("n_splits") = 100, py::arg("step_size") = 0.1,
      py::arg("seed") = 0, nogil);
  m.def(
      "saliency_auc_shuffled",
      [](const torch::Tensor& s, const torch::Tensor& f, const torch::Tensor& other, int64_t n_splits,
         double step_size, uint64_t seed) {
        return saliency::auc_shuffled(s, f, other, sampled_auc(n_splits, step_size, seed)).values;
      },
      py::arg("saliency"), py::arg("fixations"), py::arg("other_fixations"), py::arg("n_splits") = 100,
      py::arg("step_size") = 0.1, py::arg("seed") = 0, nogil);

  // ---- models, representations, attribution ------------------------------
  py::class_<models::Classifier, std::unique_ptr<models::Classifier>>(m, "Model")
      .def_property_readonly("num_classes", &models::Classifier::num_classes)
      .def_property_readonly("in_channels", &models::Classifier::in_channels)
      .def_property_readonly("default_layer", &models::Classifier::default_layer)
      .def("layers", &models::Classifier::layers)
      .def("__repr__", [](const models::Classifier& c) { return "<gradlens.Model " + c.describe() + ">"; })
      .def(
          "_forward",
          [](models::Classifier& c, const torch::Tensor& x) {
            torch::NoGradGuard ng;
            models::ModeGuard eval(c, false);
            return c.forward(model_input(c, x));
          },
          py::arg("images"), nogil);
  m.def(
      "load_model",
      [](const std::string& path, int64_t image_size, int64_t channels, int64_t output_index,
         const std::string& output_key, int64_t class_tokens, const std::string& device) {
        // As the CLI: 0 channels = the model's own (a TorchScript model's first
        // convolution); 0 image_size = gradlens.json's, else 28.
        const auto meta = models::read_model_metadata(path);
        models::ResNetConfig fresh;
        fresh.in_channels = channels > 0 ? channels : meta.channels > 0 ? meta.channels
                                                    : std::filesystem::exists(path) ? 0 : 1;
        if (image_size <= 0) image_size = meta.image_size > 0 ? meta.image_size : 28;
        models::TorchScriptOptions ts;
        ts.output_index = output_index;
        ts.output_key = output_key;
        ts.class_tokens = class_tokens;
        models::ModelOptions mo;
        mo.torchscript = ts;
        const auto dev = core::parse_device(device);
        auto model = models::open_classifier(path, dev, fresh, image_size, mo);
        model->train(false);
        return model;
      },
      py::arg("path"), py::arg("image_size") = 0, py::arg("channels") = 0, py::arg("output_index") = -1,
      py::arg("output_key") = "", py::arg("class_tokens") = -1, py::arg("device") = "cpu");
  m.def("representation_names", &extract::representation_names);
  m.def(
      "extract",
      [](models::Classifier& model, const torch::Tensor& images, const c10::optional<torch::Tensor>& labels,
         const std::vector<std::string>& representations, const std::string& layer,
         const std::vector<std::string>& gradcam_targets, const std::vector<std::string>& grad_labels,
         const std::string& pool, int64_t batch_size, const std::string& param_layer) {
        extract::ExtractOptions o;
        o.representations = representations;
        o.layer = layer;
        o.gradcam_targets = gradcam_targets;
        o.grad_labels = grad_labels;
        o.pool = extract::parse_activation_pool(pool, "--pool");
        o.param_layer = param_layer;
        const auto x = model_input(model, images);
        const auto y = label_input(labels, x.size(0));
        Parts parts;
        in_batches(x.size(0), batch_size, [&](int64_t b, int64_t e) {
          const auto out = extract::extract_batch(model, x.slice(0, b, e), y.defined() ? y.slice(0, b, e) : y, o);
          for (size_t i = 0; i < out.specs.size(); ++i) parts[out.specs[i].name].push_back(out.values[i]);
          parts["preds"].push_back(out.preds);
        });
        return concat(parts);
      },
      py::arg("model"), py::arg("images"), py::arg("labels") = py::none(),
      py::arg("representations") = extract::representation_names(), py::arg("layer") = "",
      py::arg("gradcam_targets") = std::vector<std::string>{"pred"},
      py::arg("grad_labels") = std::vector<std::string>{"pred"}, py::arg("pool") = "none",
      py::arg("batch_size") = 100, py::arg("param_layer") = "", nogil);
  m.def(
      "attribution",
      [](models::Classifier& model, const torch::Tensor& images, const c10::optional<torch::Tensor>& labels,
         const std::string& method, const std::string& layer, const std::string& target, int64_t smoothgrad_samples,
         double smoothgrad_sigma, int64_t ig_steps, const std::string& ig_rule, uint64_t seed, int64_t batch_size) {
        saliency::AttributionOptions o;
        o.method = saliency::parse_attribution_method(method);
        o.layer = layer;
        o.target = extract::parse_gradient_target(target, "--target");
        o.smoothgrad_samples = smoothgrad_samples;
        o.smoothgrad_sigma = smoothgrad_sigma;
        o.ig_steps = ig_steps;
        o.ig_rule = saliency::parse_ig_rule(ig_rule, "--ig-rule");
        o.seed = seed;
        const auto x = model_input(model, images);
        const auto y = label_input(labels, x.size(0));
        Parts parts;
        in_batches(x.size(0), batch_size, [&](int64_t b, int64_t e) {
          const auto a = saliency::compute_attribution(model, x.slice(0, b, e), y.defined() ? y.slice(0, b, e) : y, o, b);
          parts["maps"].push_back(a.maps);
          parts["raw"].push_back(a.raw);
          parts["preds"].push_back(a.preds);
          parts["logits"].push_back(a.logits);
          if (a.weights.defined()) parts["weights"].push_back(a.weights);
          if (a.attributions.defined()) parts["attributions"].push_back(a.attributions);
        });
        return concat(parts);
      },
      py::arg("model"), py::arg("images"), py::arg("labels") = py::none(), py::arg("method") = "gradcam",
      py::arg("layer") = "", py::arg("target") = "pred", py::arg("smoothgrad_samples") = 25,
      py::arg("smoothgrad_sigma") = 0.15, py::arg("ig_steps") = 64, py::arg("ig_rule") = "trapezoid",
      py::arg("seed") = 0, py::arg("batch_size") = 100, nogil);

  // ---- training-data attribution and label noise --------------------------
  py::class_<influence::GradientFactors>(m, "GradientFactors")
      .def_readonly("delta", &influence::GradientFactors::delta)
      .def_readonly("features", &influence::GradientFactors::features)
      .def_readonly("logits", &influence::GradientFactors::logits)
      .def_readonly("projected", &influence::GradientFactors::projected)
      .def("__len__", &influence::GradientFactors::size);
  m.def(
      "gradient_factors",
      [](models::Classifier& model, const torch::Tensor& images, const torch::Tensor& labels,
         const std::vector<std::string>& param_layers, int64_t proj_dim, uint64_t proj_seed,
         const std::string& projection, int64_t batch_size) {
        const auto x = model_input(model, images);
        const auto y = label_input(labels, x.size(0));
        influence::ProjectionOptions po;
        po.layers = param_layers;
        po.dim = proj_dim;
        po.seed = proj_seed;
        po.kind = influence::parse_projection_kind(projection);
        const auto projections = influence::make_projections(model, x.slice(0, 0, 1), po);
        return influence::gradient_factors(model, x, y, batch_size, projections, interrupt_progress());
      },
      py::arg("model"), py::arg("images"), py::arg("labels"), py::arg("param_layers") = std::vector<std::string>{},
      py::arg("proj_dim") = 1024, py::arg("proj_seed") = 0, py::arg("projection") = "gaussian",
      py::arg("batch_size") = 500, nogil);
  m.def(
      "tracin",
      [](const std::vector<influence::GradientFactors>& train, const std::vector<influence::GradientFactors>& queries,
         const std::vector<double>& step_sizes, int64_t top_k, bool cosine, bool return_scores) {
        influence::TracInOptions o;
        o.top_k = top_k;
        o.cosine = cosine;
        o.keep_scores = return_scores;
        const auto r = influence::tracin(train, queries, step_sizes, o);
        std::map<std::string, torch::Tensor> out = {{"proponents", r.proponents},
                                                    {"proponent_scores", r.proponent_scores},
                                                    {"opponents", r.opponents},
                                                    {"opponent_scores", r.opponent_scores}};
        if (return_scores) out["scores"] = r.scores;
        return out;
      },
      py::arg("train"), py::arg("queries"), py::arg("step_sizes"), py::arg("top_k") = 10, py::arg("cosine") = false,
      py::arg("return_scores") = false, nogil);
  m.def("self_influence", &influence::self_influence, py::arg("train"), py::arg("step_sizes"), nogil);
  m.def("gradient_norm", &influence::gradient_norm, py::arg("factors"), nogil);
  m.def("aum_score", &analysis::aum_score, py::arg("margin"), nogil);
  m.def("forgetting_score", &analysis::forgetting_score, py::arg("correct"), nogil);
  m.def("low_confidence_score", &analysis::low_confidence_score, py::arg("p_label"), nogil);
  m.def("variability_score", &analysis::variability_score, py::arg("p_label"), nogil);
  m.def("el2n_score", &analysis::el2n_score, py::arg("el2n"), py::arg("epoch"), nogil);
  m.def("found_at_fraction", &analysis::found_at_fraction, py::arg("scores"), py::arg("is_error"),
        py::arg("fraction"), nogil);
  m.def("found_curve", &analysis::found_curve, py::arg("scores"), py::arg("is_error"), py::arg("points") = 100, nogil);
  m.def("ranking_order", &analysis::ranking_order, py::arg("scores"), nogil);
  // ---- Hessian, audit, evaluate ----------------------------------------------
  m.def(
      "hessian_spectrum",
      [](models::Classifier& model, const torch::Tensor& images, const torch::Tensor& labels, const std::string& wrt,
         const std::vector<std::string>& params, int64_t k, int64_t max_iter, double tol, bool trace,
         int64_t trace_max_iter, int64_t trace_min_iter, double trace_tol, uint64_t seed, int64_t batch_size,
         bool one_batch) {
        const auto x = model_input(model, images);
        const auto y = label_input(labels, x.size(0)).to(x.device());
        hessian::LossSpectrumOptions o;
        o.wrt = hessian::parse_hessian_wrt(wrt, "--wrt");
        o.param_prefixes = params;
        o.batch_size = batch_size;
        o.one_batch = one_batch;
        o.eigen.k = k;
        o.eigen.max_iter = max_iter;
        o.eigen.tol = tol;
        o.eigen.seed = seed;
        o.compute_trace = trace;
        o.trace.max_iter = trace_max_iter;
        o.trace.min_iter = trace_min_iter;
        o.trace.tol = trace_tol;
        o.trace.seed = seed;
        GRADLENS_CHECK(k >= 1 && max_iter >= 1 && trace_max_iter >= 1 && trace_min_iter >= 1 && tol > 0 &&
                           trace_tol > 0,
                       "k, max_iter, trace_max_iter and trace_min_iter must be >= 1 and tol, trace_tol > 0");
        const auto s = hessian::loss_spectrum(model, x.size(0), [&](int64_t b, int64_t e) {
          check_interrupt();
          return std::make_pair(x.slice(0, b, e), y.slice(0, b, e));
        }, o);
        py::gil_scoped_acquire gil;
        py::dict out;
        out["eigenvalues"] = s.eigen.eigenvalues;
        out["iterations"] = s.eigen.iterations;
        py::list vectors;
        for (const auto& v : s.eigen.eigenvectors) vectors.append(py::cast(v));
        out["eigenvectors"] = vectors;
        out["samples"] = s.samples;
        out["dimension"] = s.dimension;
        if (trace) {
          out["trace"] = s.trace.trace;
          out["trace_std_error"] = s.trace.std_error;
          out["trace_samples"] = s.trace.samples;
        }
        return out;
      },
      py::arg("model"), py::arg("images"), py::arg("labels"), py::arg("wrt") = "params",
      py::arg("params") = std::vector<std::string>{}, py::arg("k") = 1, py::arg("max_iter") = 100,
      py::arg("tol") = 1e-3, py::arg("trace") = true, py::arg("trace_max_iter") = 100, py::arg("trace_min_iter") = 2,
      py::arg("trace_tol") = 1e-3, py::arg("seed") = 0, py::arg("batch_size") = 100, py::arg("one_batch") = false,
      nogil);
  m.def(
      "audit",
      [](const torch::Tensor& x, const c10::optional<torch::Tensor>& labels, int64_t num_classes,
         const std::string& name, bool uses_true_labels, const c10::optional<torch::Tensor>& head_identity,
         double identity_rtol, double rank_eps, int64_t rank_rows, double leakage_accuracy) {
        extract::AuditInput in;
        in.name = name;
        in.uses_true_labels = uses_true_labels;
        if (head_identity) in.head_identity = *head_identity;
        extract::AuditOptions o;
        o.identity_rtol = identity_rtol;
        o.rank_eps = rank_eps;
        o.rank_rows = rank_rows;
        o.leakage_accuracy = leakage_accuracy;
        GRADLENS_CHECK(identity_rtol >= 0 && rank_eps >= 0 && rank_rows >= 1,
                       "identity_rtol and rank_eps must be >= 0 and rank_rows >= 1");
        GRADLENS_CHECK(x.dim() >= 1, "x: expected a matrix [N, D], got a scalar");
        const auto y = label_input(labels, x.size(0));
        GRADLENS_CHECK(!y.defined() || num_classes >= 1, "num_classes: give the number of classes with labels");
        const auto r = extract::audit_representation(x, y, num_classes, in, o);
        py::gil_scoped_acquire gil;
        py::dict out;
        out["name"] = r.name;
        out["rows"] = r.rows;
        out["cols"] = r.cols;
        out["distinct_rows"] = r.distinct_rows;
        out["zero_rows"] = r.zero_rows;
        out["rank"] = r.rank;
        out["rank_rows"] = r.rank_rows;
        out["rank_tol"] = r.rank_tol;
        out["top_singular_value"] = r.top_singular_value;
        out["identity_checked"] = r.identity_checked;
        out["identity_rel_diff"] = r.identity_rel_diff;
        out["equals_head_identity"] = r.equals_head_identity;
        out["ncm_accuracy"] = r.ncm_accuracy;
        out["majority_accuracy"] = r.majority_accuracy;
        out["degenerate"] = r.degenerate;
        out["label_informed"] = r.label_informed;
        out["warnings"] = r.warnings;
        return out;
      },
      py::arg("x"), py::arg("labels") = py::none(), py::arg("num_classes") = 0, py::arg("name") = "x",
      py::arg("uses_true_labels") = false, py::arg("head_identity") = py::none(), py::arg("identity_rtol") = 1e-5,
      py::arg("rank_eps") = 0.0, py::arg("rank_rows") = 5000, py::arg("leakage_accuracy") = 0.95, nogil);
  m.def(
      "evaluate",
      [](const std::vector<std::string>& model_specs, const std::string& data, const std::string& data_dir,
         int64_t image_size, int64_t resize, const std::vector<double>& mean, const std::vector<double>& std,
         const std::string& input_range, int64_t channels, bool skip_bad_images, double test_fraction,
         int64_t train_per_class, const std::string& subset, int64_t per_class, const std::string& out,
         const std::string& layer, const std::string& target, int64_t pca_dims, const std::string& normalize,
         int64_t k, int64_t kmeans_n_init, const std::string& gmm_covariance, double flip_fraction,
         int64_t neighbors, const std::string& label_error_embedding, int64_t arch_epochs,
         int64_t arch_train_per_class, int64_t batch_size, bool cache, const std::string& device, uint64_t seed,
         const std::string& conv_algorithm, bool verify, const std::vector<std::string>& compare_methods,
         bool quick) {
        pipeline::EvaluateConfig c;
        c.compare_methods = compare_methods;
        c.quick = quick;
        c.models = model_specs;
        c.data.data = data;
        c.data.idx_dir = data_dir;
        c.data.image_size = image_size;
        c.data.resize = resize;
        c.data.mean = mean;
        c.data.std = std;
        c.data.input_range = input_range;
        c.data.channels = channels;
        c.data.skip_bad_images = skip_bad_images;
        c.data.test_fraction = test_fraction;
        c.data.train_per_class = train_per_class;
        c.data.subset = data::parse_subset_mode(subset, "--subset");
        c.per_class = per_class;
        c.out = out;
        c.layer = layer;
        c.target = extract::parse_gradient_target(target, "--target");
        GRADLENS_CHECK_OPTION(pca_dims >= 0 && k >= 0 && kmeans_n_init >= 1 && neighbors >= 1 && arch_epochs >= 1 &&
                                  arch_train_per_class >= 0,
                              "pca_dims, k and arch_train_per_class must be >= 0; kmeans_n_init, neighbors and "
                              "arch_epochs >= 1");
        c.analyze.pca_dims = pca_dims;
        c.analyze.normalize = analysis::parse_row_normalization(normalize, "normalize");
        c.analyze.k = k;
        c.analyze.kmeans_n_init = kmeans_n_init;
        c.analyze.gmm_covariance = analysis::parse_covariance_type(gmm_covariance, "gmm_covariance");
        c.flip_fraction = flip_fraction;
        c.neighbors = neighbors;
        c.label_error_embedding = label_error_embedding;
        c.arch_epochs = arch_epochs;
        c.arch_train_per_class = arch_train_per_class;
        c.batch_size = batch_size;
        c.cache = cache;
        pipeline::RunContext rc;
        rc.device = core::parse_device(device);
        rc.seed = seed;
        rc.threads = at::get_num_threads();
        rc.model.conv = models::parse_conv_algorithm(conv_algorithm);
        rc.model.verify_files = verify;
        rc.progress = interrupt_progress();
        const auto r = pipeline::run_evaluate(c, rc);
        py::gil_scoped_acquire gil;
        py::dict res;
        res["out"] = r.out.string();
        res["report_html"] = r.report_html.string();
        res["indices"] = r.indices;
        py::list ms;
        for (const auto& me : r.models) {
          py::dict d;
          d["spec"] = me.spec;
          d["labels"] = me.labels;
          d["preds"] = me.preds;
          d["confidence"] = me.confidence;
          d["gradcam_maps"] = me.saliency.maps;
          d["label_error_scores"] = py::cast(me.errors.scores);
          ms.append(d);
        }
        res["models"] = ms;
        return res;
      },
      py::arg("models"), py::arg("data"), py::arg("data_dir"), py::arg("image_size"), py::arg("resize"),
      py::arg("mean"), py::arg("std"), py::arg("input_range"), py::arg("channels"), py::arg("skip_bad_images"),
      py::arg("test_fraction"), py::arg("train_per_class"), py::arg("subset"), py::arg("per_class"), py::arg("out"),
      py::arg("layer"), py::arg("target"), py::arg("pca_dims"), py::arg("normalize"), py::arg("k"),
      py::arg("kmeans_n_init"), py::arg("gmm_covariance"), py::arg("flip_fraction"), py::arg("neighbors"),
      py::arg("label_error_embedding"), py::arg("arch_epochs"), py::arg("arch_train_per_class"),
      py::arg("batch_size"), py::arg("cache"), py::arg("device"), py::arg("seed"), py::arg("conv_algorithm"),
      py::arg("verify"), py::arg("compare_methods"), py::arg("quick"), nogil);
  // `gradlens train`: options by the command's flag names (dashes as
  // underscores), starting from the command's defaults.
  m.def("train_options", [] { return train_options_dict(pipeline::default_train_config()); });
  m.def("train", [](const py::dict& options) {
    pipeline::TrainConfig c = pipeline::default_train_config();
    TrainOptionReader read{options, {}};
    pipeline::RunContext rc;
    read_train_options(read, c, rc);
    read.reject_unknown();
    pipeline::TrainSummary s;
    {
      py::gil_scoped_release nogil;
      BlasOneThread blas;
      rc.threads = at::get_num_threads();
      rc.progress = interrupt_progress();
      s = pipeline::run_train(c, rc);
    }
    py::dict out;
    out["checkpoint"] = s.checkpoint;
    out["summary"] = s.summary_json_path;
    out["record"] = s.record;
    out["model"] = s.model_description;
    out["parameters"] = s.parameters;
    out["test_accuracy"] = s.result.final_test_acc();
    out["seconds"] = s.result.seconds;
    py::list epochs;
    for (const auto& e : s.result.epochs) {
      py::dict d;
      d["epoch"] = e.epoch;
      d["train_loss"] = e.train_loss;
      d["train_accuracy"] = e.train_acc;
      d["test_loss"] = e.test_loss;
      d["test_accuracy"] = e.test_acc;
      d["lr_mean"] = e.lr_mean;
      d["seconds"] = e.seconds;
      for (const auto& [name, value] : e.terms) d[py::str(name)] = value;
      epochs.append(d);
    }
    out["epochs"] = epochs;
    return out;
  }, py::arg("options"));
  // ---- faithfulness, localisation, sanity ----------------------------------
  for (const bool insertion : {false, true})
    m.def(
        insertion ? "saliency_insertion" : "saliency_deletion",
        [insertion](const py::object& model, const torch::Tensor& images, const torch::Tensor& maps,
                    const torch::Tensor& targets, int64_t steps, const std::string& baseline, double blur_sigma,
                    int64_t batch_size, int64_t patch_size) {
          saliency::PerturbationOptions o;
          o.steps = steps;
          o.patch_size = patch_size;
          o.baseline = saliency::parse_baseline(baseline, "baseline");
          o.blur_sigma = blur_sigma;
          o.batch_size = batch_size;
          const auto f = logits_of(model);
          return curve_dict(released([&] {
            return insertion ? saliency::insertion_curve(f, images, maps, targets, o)
                             : saliency::deletion_curve(f, images, maps, targets, o);
          }));
        },
        py::arg("model"), py::arg("images"), py::arg("maps"), py::arg("targets"), py::arg("steps") = 20,
        py::arg("baseline") = "zero", py::arg("blur_sigma") = 5.0, py::arg("batch_size") = 256,
        py::arg("patch_size") = 1);
  m.def(
      "saliency_confidence_change",
      [](const py::object& model, const torch::Tensor& images, const torch::Tensor& maps, const torch::Tensor& targets,
         int64_t batch_size) {
        const auto f = logits_of(model);
        const auto r = released([&] { return saliency::confidence_change(f, images, maps, targets, batch_size); });
        py::dict d;
        d["average_drop"] = r.drop;
        d["increase"] = r.increase;
        return d;
      },
      py::arg("model"), py::arg("images"), py::arg("maps"), py::arg("targets"), py::arg("batch_size") = 256);
  m.def(
      "saliency_road",
      [](const py::object& model, const torch::Tensor& images, const torch::Tensor& maps, const torch::Tensor& targets,
         const std::vector<double>& fractions, double noise, uint64_t seed, int64_t batch_size) {
        saliency::RoadOptions o;
        o.fractions = fractions;
        o.noise = noise;
        o.seed = seed;
        o.batch_size = batch_size;
        const auto f = logits_of(model);
        const auto r = released([&] { return saliency::road(f, images, maps, targets, o); });
        py::dict d;
        d["fractions"] = r.fractions;
        d["morf"] = r.morf;
        d["lerf"] = r.lerf;
        d["morf_mean"] = r.morf_mean;
        d["lerf_mean"] = r.lerf_mean;
        d["combined"] = r.combined;
        return d;
      },
      py::arg("model"), py::arg("images"), py::arg("maps"), py::arg("targets"),
      py::arg("fractions") = saliency::RoadOptions{}.fractions, py::arg("noise") = 0.01, py::arg("seed") = 0,
      py::arg("batch_size") = 256);
  m.def("linear_imputation", &saliency::linear_imputation, py::arg("images"), py::arg("removed"), nogil);
  m.def("saliency_pointing_game", &saliency::pointing_game, py::arg("maps"), py::arg("masks"),
        py::arg("tolerance") = 15.0, nogil);
  m.def("saliency_energy_pointing_game", &saliency::energy_pointing_game, py::arg("maps"), py::arg("masks"), nogil);
  m.def("saliency_relevance_rank_accuracy", &saliency::relevance_rank_accuracy, py::arg("maps"), py::arg("masks"),
        nogil);
  m.def(
      "saliency_random_logit",
      [](models::Classifier& model, const torch::Tensor& images, const torch::Tensor& classes, const std::string& method,
         const std::string& layer, uint64_t seed, int64_t batch_size) {
        saliency::AttributionOptions a;
        a.method = saliency::parse_attribution_method(method);
        a.layer = layer;
        saliency::RandomLogitOptions o;
        o.seed = seed;
        o.batch_size = batch_size;
        const auto x = model_input(model, images);
        const auto r = saliency::random_logit_test(model, x, label_input(classes, x.size(0)).to(x.device()), a, o);
        return std::map<std::string, torch::Tensor>{{"classes", r.classes},
                                                    {"other_classes", r.other_classes},
                                                    {"spearman", r.spearman},
                                                    {"ssim", r.ssim}};
      },
      py::arg("model"), py::arg("images"), py::arg("classes"), py::arg("method") = "gradcam", py::arg("layer") = "",
      py::arg("seed") = 0, py::arg("batch_size") = 64, nogil);
  m.def("saliency_spearman", &saliency::spearman_rank_correlation, py::arg("a"), py::arg("b"), nogil);
  m.def("saliency_ssim", &saliency::ssim, py::arg("a"), py::arg("b"), py::arg("data_range") = 1.0, nogil);
  m.def(
      "saliency_model_randomisation",
      [](models::Classifier& model, const torch::Tensor& images, const c10::optional<torch::Tensor>& labels,
         const std::string& method, const std::string& layer, const std::string& target, bool cascading,
         int64_t max_groups, uint64_t seed, int64_t batch_size) {
        saliency::AttributionOptions a;
        a.method = saliency::parse_attribution_method(method);
        a.layer = layer;
        a.target = extract::parse_gradient_target(target, "--target");
        saliency::RandomisationOptions o;
        o.cascading = cascading;
        o.max_groups = max_groups;
        o.seed = seed;
        o.batch_size = batch_size;
        const auto x = model_input(model, images);
        auto y = label_input(labels, x.size(0));
        GRADLENS_CHECK_OPTION(y.defined() || target == "pred", "target '", target, "' needs the labels");
        // Target pred explains each prediction: the labels are not read.
        if (!y.defined()) y = torch::zeros({x.size(0)}, torch::kLong);
        std::vector<std::tuple<std::string, torch::Tensor, torch::Tensor>> out;
        for (const auto& st : saliency::model_randomisation_test(model, x, y.to(x.device()), a, o))
          out.emplace_back(st.group, st.spearman, st.ssim);
        return out;
      },
      py::arg("model"), py::arg("images"), py::arg("labels") = py::none(), py::arg("method") = "gradcam",
      py::arg("layer") = "", py::arg("target") = "pred", py::arg("cascading") = true, py::arg("max_groups") = 0,
      py::arg("seed") = 0, py::arg("batch_size") = 64, nogil);
}
