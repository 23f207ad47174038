// SPDX-License-Identifier: MIT
//
// Implementation of plugin_fake_helper.h: the scripted token-helper
// stand-in used by the plugin's unit tests.

#include "plugin_fake_helper.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>

namespace xoauth2::testing {

FakeHelper::FakeHelper(std::string path, std::vector<std::string> replies)
    : path_(std::move(path)), replies_(std::move(replies)) {
  listen_fd_ = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path_.c_str(), sizeof(addr.sun_path) - 1);
  if (listen_fd_ < 0 ||
      bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(listen_fd_, 16) != 0 || pipe2(stop_pipe_, O_CLOEXEC) != 0) {
    throw std::runtime_error("fake helper cannot listen on " + path_);
  }
  thread_ = std::thread([this] { Run(); });
}

FakeHelper::~FakeHelper() {
  (void)!write(stop_pipe_[1], "x", 1);
  thread_.join();
  close(listen_fd_);
  close(stop_pipe_[0]);
  close(stop_pipe_[1]);
  unlink(path_.c_str());
}

std::vector<std::string> FakeHelper::Requests() const {
  std::lock_guard lock(mutex_);
  return requests_;
}

bool FakeHelper::WaitForRequests(std::size_t count,
                                 std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout,
                           [&] { return requests_.size() >= count; });
}

// Waits until `fd` is readable (or closed); false when asked to stop.
bool FakeHelper::WaitReadable(int fd) const {
  pollfd fds[2] = {{fd, POLLIN, 0}, {stop_pipe_[0], POLLIN, 0}};
  while (poll(fds, 2, -1) < 0) {
  }
  return (fds[1].revents & POLLIN) == 0;
}

void FakeHelper::Run() {
  while (WaitReadable(listen_fd_)) {
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0)
      continue;
    Serve(fd);
    close(fd);
  }
}

std::string FakeHelper::NextReply() {
  std::lock_guard lock(mutex_);
  if (replies_.empty())
    return "ok\n";
  std::string reply = replies_[std::min(next_reply_, replies_.size() - 1)];
  ++next_reply_;
  return reply;
}

// Reads one request line, records it, and answers as scripted.
void FakeHelper::Serve(int fd) {
  std::string reply = NextReply();
  if (reply.starts_with(kAnswerUnread)) {
    reply.erase(0, kAnswerUnread.size());
    (void)!send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
    return;  // closed by Run() with the request unread
  }

  std::string line;
  char c = 0;
  while (line.empty() || line.back() != '\n') {
    if (!WaitReadable(fd) || read(fd, &c, 1) != 1)
      return;
    line += c;
  }
  {
    std::lock_guard lock(mutex_);
    requests_.push_back(line);
  }
  changed_.notify_all();

  if (reply == kSilent) {
    // Hold the connection until the client closes it or the test ends.
    while (WaitReadable(fd) && read(fd, &c, 1) == 1) {
    }
    return;
  }
  (void)!send(fd, reply.data(), reply.size(), MSG_NOSIGNAL);
}

}  // namespace xoauth2::testing
