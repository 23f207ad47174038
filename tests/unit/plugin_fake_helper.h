// SPDX-License-Identifier: MIT
//
// FakeHelper: a stand-in for token-helper in the plugin's unit tests. A
// plain Unix stream socket server on one thread that records each request
// line and answers it with the next scripted reply (the last one repeats).
//
// The server thread is owned by the object: the destructor stops it
// through a pipe and joins it, so no thread outlives a test. Replies are
// raw bytes (the script includes the LF, or leaves it out on purpose);
// kSilent keeps the connection open without answering until the client
// gives up; a reply starting with kAnswerUnread is sent (without that
// prefix) as soon as the connection is accepted, before anything is read,
// and the connection is closed, as token-helper does when it has too many
// connections. Does not check peer credentials or parse requests.

#ifndef XOAUTH2_TESTS_UNIT_PLUGIN_FAKE_HELPER_H
#define XOAUTH2_TESTS_UNIT_PLUGIN_FAKE_HELPER_H

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace xoauth2::testing {

// A scripted reply that never comes: the connection stays open, unanswered.
inline const std::string kSilent = "\x01silent\x01";

// Prefix of a reply sent on accept, before reading, then closed.
inline const std::string kAnswerUnread = "\x01unread\x01";

class FakeHelper {
 public:
  // Listens on `path` (which must not exist) and serves until destroyed.
  FakeHelper(std::string path, std::vector<std::string> replies);
  ~FakeHelper();
  FakeHelper(const FakeHelper&) = delete;
  FakeHelper& operator=(const FakeHelper&) = delete;

  // Request lines received so far, each with its LF.
  std::vector<std::string> Requests() const;

  // Waits until at least `count` requests arrived; false on timeout.
  bool WaitForRequests(std::size_t count, std::chrono::milliseconds timeout);

 private:
  void Run();
  void Serve(int fd);
  std::string NextReply();
  bool WaitReadable(int fd) const;

  std::string path_;
  std::vector<std::string> replies_;
  std::size_t next_reply_ = 0;
  int listen_fd_ = -1;
  int stop_pipe_[2] = {-1, -1};
  mutable std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<std::string> requests_;
  std::thread thread_;
};

}  // namespace xoauth2::testing

#endif  // XOAUTH2_TESTS_UNIT_PLUGIN_FAKE_HELPER_H
