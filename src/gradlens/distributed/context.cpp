#include "gradlens/distributed/context.h"
#include <torch/types.h>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "gradlens/core/check.h"
#include "gradlens/core/runtime.h"
#include "gradlens/core/torch_compat.h"
#include "gradlens/core/torch_compat_c10d.h"

namespace gradlens::distributed {

namespace {

constexpr std::chrono::milliseconds kCtxDefaultTimeout{300000};

// The value of environment variable `name`, or "" when unset.
std::string ctx_env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

// Parses an integer environment variable; `fallback` when unset or empty.
int64_t ctx_env_int(const char* name, int64_t fallback) {
  const std::string v = ctx_env(name);
  if (v.empty()) return fallback;
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  GRADLENS_CHECK(errno == 0 && end && *end == '\0', "environment variable ", name, "='", v,
                 "' is not an integer; unset it or set it to an integer (as torchrun does)");
  return x;
}

bool ctx_is_loopback(const std::string& addr) {
  return addr == "localhost" || addr.rfind("127.", 0) == 0 || addr == "::1";
}

std::string ctx_hostname() {
  char buf[256] = {0};
  if (::gethostname(buf, sizeof(buf) - 1) != 0) return "?";
  return buf;
}

// True if process `pid` on this host has exited (gone, zombie or dead).
bool ctx_process_gone(long pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  if (!f) return true;
  std::string line;
  std::getline(f, line);
  const auto close = line.rfind(')');
  if (close == std::string::npos || close + 2 >= line.size()) return false;
  const char state = line[close + 2];
  return state == 'Z' || state == 'X';
}

std::vector<uint8_t> ctx_bytes(const std::string& s) {
  return std::vector<uint8_t>(s.begin(), s.end());
}

// Resolves kAuto, and checks the choice when ranks will talk (world_size > 1).
void ctx_resolve_backend(DistOptions& o, bool env) {
  if (o.backend == Backend::kAuto) {
    const std::string named = env ? ctx_env("GRADLENS_DIST_BACKEND") : std::string();
    o.backend = !named.empty() ? parse_backend(named, "GRADLENS_DIST_BACKEND")
                               : (o.device.is_cuda() ? Backend::kNccl : Backend::kGloo);
  }
  if (o.world_size == 1 || o.backend != Backend::kNccl) return;
  GRADLENS_CHECK(compat::kHasNccl, "the NCCL backend (GRADLENS_DIST_BACKEND or --device ", o.device.str(),
                 ") needs a LibTorch built with CUDA and NCCL, and this one has neither; use --device cpu "
                 "(Gloo), or build gradlens against a CUDA LibTorch (CMAKE_PREFIX_PATH)");
  GRADLENS_CHECK(o.device.is_cuda(), "GRADLENS_DIST_BACKEND=nccl runs the collectives on CUDA devices, but this "
                 "rank computes on ", o.device.str(), "; use --device cuda, or GRADLENS_DIST_BACKEND=gloo");
}

}  // namespace

const char* backend_name(Backend b) {
  switch (b) {
    case Backend::kGloo: return "gloo";
    case Backend::kNccl: return "nccl";
    case Backend::kAuto: break;
  }
  return "auto";
}

Backend parse_backend(const std::string& name, const std::string& what) {
  if (name == "gloo") return Backend::kGloo;
  if (name == "nccl") return Backend::kNccl;
  GRADLENS_CHECK(false, what, ": unknown distributed backend '", name, "'; use gloo (CPU) or nccl (CUDA)");
  return Backend::kAuto;
}

DistOptions resolve_options(const DistOptions& in) {
  DistOptions o = in;
  const bool env = in.use_environment;
  if (o.world_size < 0) o.world_size = static_cast<int>(env ? ctx_env_int("WORLD_SIZE", 1) : 1);
  GRADLENS_CHECK(o.world_size >= 1, "WORLD_SIZE must be >= 1, got ", o.world_size,
                 "; unset it for a single process or set the number of ranks");
  if (o.timeout.count() <= 0) {
    const int64_t s = env ? ctx_env_int("GRADLENS_DIST_TIMEOUT", 0) : 0;
    GRADLENS_CHECK(s >= 0, "GRADLENS_DIST_TIMEOUT must be a number of seconds >= 1, got ", s);
    o.timeout = s > 0 ? std::chrono::milliseconds(s * 1000) : kCtxDefaultTimeout;
  }
  if (o.world_size == 1) {
    o.rank = std::max(o.rank, 0);
    GRADLENS_CHECK(o.rank == 0, "rank ", o.rank, " is outside [0, 1) for WORLD_SIZE=1");
    if (o.local_rank < 0) o.local_rank = 0;
    ctx_resolve_backend(o, env);
    return o;
  }
  if (o.rank < 0) {
    GRADLENS_CHECK(!env || !ctx_env("RANK").empty(), "WORLD_SIZE=", o.world_size,
                   " is set but RANK is not; set RANK (0..", o.world_size - 1,
                   ") for every process, or start them with 'gradlens launch' or torchrun");
    o.rank = static_cast<int>(env ? ctx_env_int("RANK", -1) : -1);
  }
  GRADLENS_CHECK(o.rank >= 0 && o.rank < o.world_size, "RANK=", o.rank, " is outside [0, WORLD_SIZE=",
                 o.world_size, "); give every process a distinct rank in 0..", o.world_size - 1);
  if (o.local_rank < 0) o.local_rank = static_cast<int>(env ? ctx_env_int("LOCAL_RANK", o.rank) : o.rank);
  if (o.master_addr.empty() && env) o.master_addr = ctx_env("MASTER_ADDR");
  GRADLENS_CHECK(!o.master_addr.empty(), "WORLD_SIZE=", o.world_size,
                 " but MASTER_ADDR is not set; set it to the host of rank 0 (127.0.0.1 on one machine)");
  if (o.master_port < 0 && env) o.master_port = static_cast<int>(ctx_env_int("MASTER_PORT", -1));
  GRADLENS_CHECK(o.master_port >= 1 && o.master_port <= 65535, "MASTER_PORT=", o.master_port,
                 " is not a TCP port; set MASTER_PORT to a free port in 1..65535 on rank 0's host");
  if (o.device.is_cuda() && !o.device.has_index())
    o.device = c10::Device(c10::kCUDA, static_cast<c10::DeviceIndex>(o.local_rank));
  ctx_resolve_backend(o, env);
  return o;
}

RankSetup join_ranks(c10::Device device) {
  DistOptions o;
  o.device = device;
  o = resolve_options(o);
  // cuda:LOCAL_RANK must be a GPU this process sees.
  if (o.device.is_cuda()) o.device = core::parse_device(o.device.str());
  return RankSetup{Communicator(o), o.device};
}


struct Communicator::Impl {
  DistOptions opts;
  std::string where;  // "MASTER_ADDR:MASTER_PORT = host:port"
  std::string host;
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<compat::CollectiveGroup> pg;
  c10::Device comm_device{c10::kCPU};  // where the collectives' buffers live
  std::vector<std::pair<std::string, long>> peers;  // (hostname, pid) per rank

  // The ranks whose process on this host has exited, as text ("" if none known).
  std::string lost_ranks() const {
    std::string out;
    for (size_t r = 0; r < peers.size(); ++r) {
      if (static_cast<int>(r) == opts.rank || peers[r].first != host) continue;
      if (ctx_process_gone(peers[r].second))
        out += (out.empty() ? "" : ", ") + std::to_string(r) + " (pid " + std::to_string(peers[r].second) + ")";
    }
    return out;
  }

  // Runs one collective and waits; rethrows a failure naming the lost rank.
  template <class F>
  void run(const char* what, F&& start) {
    try {
      auto work = start();
      work->wait();
    } catch (const std::exception& e) {
      // A killed peer's sockets close before its process is gone: look for
      // up to one second.
      std::string lost = lost_ranks();
      for (int tries = 0; lost.empty() && !peers.empty() && tries < 20; ++tries) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        lost = lost_ranks();
      }
      const std::string who = lost.empty()
                                  ? std::string("a peer rank failed or did not answer within the timeout (which "
                                                "one cannot be told from here; see the other ranks' output)")
                                  : "lost rank " + lost + ": that process exited";
      TORCH_CHECK(false, what, " failed on rank ", opts.rank, " of ", opts.world_size, ": ", who,
                  " (timeout ", opts.timeout.count() / 1000.0, " s, GRADLENS_DIST_TIMEOUT): ",
                  error_message(e));
    }
  }
};

Communicator::Communicator() : impl_(std::make_unique<Impl>()) {
  impl_->opts.rank = 0;
  impl_->opts.world_size = 1;
  impl_->opts.local_rank = 0;
  impl_->opts.timeout = kCtxDefaultTimeout;
}

Communicator::Communicator(const DistOptions& in) : Communicator() {
  impl_->opts = resolve_options(in);
  const DistOptions& o = impl_->opts;
  if (o.world_size == 1) return;
  impl_->host = ctx_hostname();
  impl_->where = "MASTER_ADDR:MASTER_PORT = " + o.master_addr + ":" + std::to_string(o.master_port);
  const double secs = o.timeout.count() / 1000.0;
  const bool agent_store = ctx_env("TORCHELASTIC_USE_AGENT_STORE") == "True" && o.use_environment;
  c10d::TCPStoreOptions so;
  so.port = static_cast<uint16_t>(o.master_port);
  so.isServer = o.rank == 0 && !agent_store;
  so.numWorkers = static_cast<size_t>(o.world_size);
  so.waitWorkers = !agent_store;
  so.timeout = o.timeout;
  compat::use_plain_tcp_store(so);
  try {
    impl_->store = c10::make_intrusive<c10d::TCPStore>(o.master_addr, so);
  } catch (const std::exception& e) {
    const std::string msg = error_message(e);
    const bool in_use = msg.find("Address already in use") != std::string::npos ||
                        msg.find("errno: 98") != std::string::npos;
    if (so.isServer && in_use)
      TORCH_CHECK(false, "rank 0 cannot host the rendezvous at ", impl_->where,
                  ": the port is already in use; choose a free MASTER_PORT (or stop the process holding it). ",
                  "c10d: ", msg);
    TORCH_CHECK(false, "rank ", o.rank, " could not rendezvous at ", impl_->where, " within ", secs,
                " s (GRADLENS_DIST_TIMEOUT): check that rank 0 is running, that MASTER_ADDR/MASTER_PORT ",
                "name its host and a reachable port, and that all WORLD_SIZE=", o.world_size,
                " ranks were started. c10d: ", msg);
  }
  try {
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("gradlens", impl_->store);
    if (o.backend == Backend::kNccl) {
      impl_->comm_device = o.device;
      impl_->pg = compat::make_nccl_group(prefixed, o.rank, o.world_size, o.timeout);
    } else {
      auto go = c10d::ProcessGroupGloo::Options::create(o.timeout);
      const std::string ifname = ctx_env("GLOO_SOCKET_IFNAME");
      if (!ifname.empty())
        go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
      else if (ctx_is_loopback(o.master_addr))
        go->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(o.master_addr));
      else
        go->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      go->threads = 1;
      impl_->pg = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, o.rank, o.world_size, go);
    }
    // Who is who, to name a lost rank later (the store may be gone by then).
    prefixed->set("peer/" + std::to_string(o.rank), ctx_bytes(impl_->host + " " + std::to_string(::getpid())));
    for (int r = 0; r < o.world_size; ++r) {
      const auto v = prefixed->get("peer/" + std::to_string(r));
      std::istringstream is(std::string(v.begin(), v.end()));
      std::pair<std::string, long> p;
      is >> p.first >> p.second;
      impl_->peers.push_back(p);
    }
  } catch (const std::exception& e) {
    TORCH_CHECK(false, "rank ", o.rank, " of ", o.world_size, ": setting up the ", backend_name(o.backend),
                " process group at ",
                impl_->where, " failed within ", secs,
                " s; check that every rank was started with the same WORLD_SIZE and MASTER_ADDR/MASTER_PORT ",
                "and that none exited. c10d: ", error_message(e));
  }
}

Communicator::~Communicator() = default;
Communicator::Communicator(Communicator&&) noexcept = default;
Communicator& Communicator::operator=(Communicator&&) noexcept = default;

int Communicator::rank() const { return impl_->opts.rank; }
int Communicator::world_size() const { return impl_->opts.world_size; }
int Communicator::local_rank() const { return impl_->opts.local_rank; }
std::chrono::milliseconds Communicator::timeout() const { return impl_->opts.timeout; }
Backend Communicator::backend() const { return impl_->opts.backend; }

std::string Communicator::describe() const {
  if (!impl_->pg) return "single process";
  return "rank " + std::to_string(rank()) + " of " + std::to_string(world_size()) + " (" +
         backend_name(backend()) + ", " + impl_->where + ")";
}

torch::Tensor& Communicator::all_reduce_sum(torch::Tensor& t) {
  GRADLENS_CHECK(t.defined(), "all_reduce_sum: undefined tensor");
  if (!impl_->pg) return t;
  std::vector<torch::Tensor> v{t.to(impl_->comm_device).contiguous().clone()};
  impl_->run("all_reduce_sum", [&] { return impl_->pg->allreduce(v); });
  t.copy_(v[0]);
  return t;
}

torch::Tensor& Communicator::broadcast(torch::Tensor& t, int root) {
  GRADLENS_CHECK(t.defined(), "broadcast: undefined tensor");
  GRADLENS_CHECK(root >= 0 && root < world_size(), "broadcast: root ", root, " is outside [0, ", world_size(), ")");
  if (!impl_->pg) return t;
  std::vector<torch::Tensor> v{t.to(impl_->comm_device).contiguous().clone()};
  c10d::BroadcastOptions bo;
  bo.rootRank = root;
  impl_->run("broadcast", [&] { return impl_->pg->broadcast(v, bo); });
  t.copy_(v[0]);
  return t;
}

namespace {

constexpr int64_t kCtxMaxDims = 8;

// Header of a row block: rows, dim, dtype, then up to kCtxMaxDims-1 trailing sizes.
torch::Tensor ctx_header(const torch::Tensor& local) {
  GRADLENS_CHECK(local.defined() && local.dim() >= 1 && local.dim() <= kCtxMaxDims,
                 "gather of row blocks: need a tensor with 1..", kCtxMaxDims, " dimensions, got ",
                 local.defined() ? local.dim() : -1);
  auto h = torch::zeros({3 + kCtxMaxDims}, torch::kInt64);
  auto* p = h.data_ptr<int64_t>();
  p[0] = local.size(0);
  p[1] = local.dim();
  p[2] = static_cast<int64_t>(local.scalar_type());
  for (int64_t i = 1; i < local.dim(); ++i) p[2 + i] = local.size(i);
  return h;
}

// The common trailing shape and dtype from the headers of all ranks
// ([world, 3 + kCtxMaxDims]); ranks without rows do not vote.
std::pair<std::vector<int64_t>, c10::ScalarType> ctx_common_shape(const torch::Tensor& headers,
                                                                  const torch::Tensor& local) {
  std::vector<int64_t> trailing;
  c10::ScalarType dtype = local.scalar_type();
  bool found = false;
  for (int64_t r = 0; r < headers.size(0); ++r) {
    const auto* p = headers[r].data_ptr<int64_t>();
    if (p[0] == 0) continue;
    std::vector<int64_t> t(p + 3, p + 3 + (p[1] - 1));
    const auto dt = static_cast<c10::ScalarType>(p[2]);
    if (!found) {
      trailing = t;
      dtype = dt;
      found = true;
    } else {
      GRADLENS_CHECK(t == trailing && dt == dtype, "gather of row blocks: rank ", r, " sends rows of shape ",
                     c10::IntArrayRef(t), " ", c10::toString(dt), " but an earlier rank sent ",
                     c10::IntArrayRef(trailing), " ", c10::toString(dtype),
                     "; every rank must send the same row shape and dtype");
    }
  }
  if (!found) trailing.assign(local.sizes().begin() + 1, local.sizes().end());
  return {trailing, dtype};
}

torch::Tensor ctx_padded(const torch::Tensor& local, int64_t rows, const std::vector<int64_t>& trailing,
                         c10::ScalarType dtype) {
  std::vector<int64_t> shape{rows};
  shape.insert(shape.end(), trailing.begin(), trailing.end());
  auto out = torch::zeros(shape, torch::TensorOptions().dtype(dtype));
  if (local.size(0) > 0) out.slice(0, 0, local.size(0)).copy_(local.to(torch::kCPU));
  return out;
}

}  // namespace

torch::Tensor Communicator::all_gather_rows(const torch::Tensor& local) {
  auto header = ctx_header(local);
  if (!impl_->pg) return local;
  std::vector<std::vector<torch::Tensor>> hout(1);
  std::vector<torch::Tensor> hin{header.to(impl_->comm_device)};
  for (int r = 0; r < world_size(); ++r) hout[0].push_back(torch::empty_like(hin[0]));
  impl_->run("all_gather_rows (sizes)", [&] { return impl_->pg->allgather(hout, hin); });
  const auto headers = torch::stack(hout[0]).cpu();
  const auto [trailing, dtype] = ctx_common_shape(headers, local);
  const int64_t max_rows = headers.select(1, 0).max().item<int64_t>();
  if (max_rows == 0) return ctx_padded(local, 0, trailing, dtype);
  std::vector<torch::Tensor> in{ctx_padded(local, max_rows, trailing, dtype).to(impl_->comm_device)};
  std::vector<std::vector<torch::Tensor>> out(1);
  for (int r = 0; r < world_size(); ++r) out[0].push_back(torch::empty_like(in[0]));
  impl_->run("all_gather_rows", [&] { return impl_->pg->allgather(out, in); });
  std::vector<torch::Tensor> parts;
  for (int r = 0; r < world_size(); ++r) parts.push_back(out[0][r].slice(0, 0, headers[r][0].item<int64_t>()));
  return torch::cat(parts, 0).cpu();
}

torch::Tensor Communicator::gather_rows(const torch::Tensor& local, int root) {
  GRADLENS_CHECK(root >= 0 && root < world_size(), "gather_rows: root ", root, " is outside [0, ", world_size(), ")");
  auto header = ctx_header(local);
  if (!impl_->pg) return local;
  // Sizes go to every rank (tiny), so that all agree on the padded shape.
  std::vector<std::vector<torch::Tensor>> hout(1);
  std::vector<torch::Tensor> hin{header.to(impl_->comm_device)};
  for (int r = 0; r < world_size(); ++r) hout[0].push_back(torch::empty_like(hin[0]));
  impl_->run("gather_rows (sizes)", [&] { return impl_->pg->allgather(hout, hin); });
  const auto headers = torch::stack(hout[0]).cpu();
  const auto [trailing, dtype] = ctx_common_shape(headers, local);
  const int64_t max_rows = headers.select(1, 0).max().item<int64_t>();
  if (max_rows == 0) return rank() == root ? ctx_padded(local, 0, trailing, dtype) : torch::Tensor();
  std::vector<torch::Tensor> in{ctx_padded(local, max_rows, trailing, dtype).to(impl_->comm_device)};
  std::vector<std::vector<torch::Tensor>> out;
  if (rank() == root) {
    out.resize(1);
    for (int r = 0; r < world_size(); ++r) out[0].push_back(torch::empty_like(in[0]));
  }
  c10d::GatherOptions go;
  go.rootRank = root;
  impl_->run("gather_rows", [&] { return impl_->pg->gather(out, in, go); });
  if (rank() != root) return torch::Tensor();
  std::vector<torch::Tensor> parts;
  for (int r = 0; r < world_size(); ++r) parts.push_back(out[0][r].slice(0, 0, headers[r][0].item<int64_t>()));
  return torch::cat(parts, 0).cpu();
}

void Communicator::barrier() {
  if (!impl_->pg) return;
  impl_->run("barrier", [&] { return impl_->pg->barrier(); });
}

}  // namespace gradlens::distributed
