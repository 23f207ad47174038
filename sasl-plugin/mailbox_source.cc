// SPDX-License-Identifier: MIT
//
// Implementation of mailbox_source.h: the host callbacks and the
// SASL_INTERACT prompt protocol for the mailbox.

#include "mailbox_source.h"

#include <cstring>

#include "protocol.h"

namespace xoauth2::plugin {
namespace {

// Calls the host's simple callback `id`. Returns SASL_OK with `out` set,
// SASL_INTERACT when the host registered the id without a function, or
// another code when the host has no such callback.
int CallSimple(const sasl_utils_t* utils, unsigned long id, std::string& out) {
  sasl_callback_ft proc = nullptr;
  void* context = nullptr;
  int rc = utils->getcallback(utils->conn, id, &proc, &context);
  if (rc != SASL_OK)
    return rc;
  if (proc == nullptr)
    return SASL_FAIL;

  // Cyrus keeps callbacks as generic function pointers; going through
  // void (*)() is the documented way to restore the real type.
  auto* generic = reinterpret_cast<void (*)()>(proc);
  auto* simple = reinterpret_cast<sasl_getsimple_t*>(generic);
  const char* result = nullptr;
  unsigned len = 0;
  rc = simple(context, static_cast<int>(id), &result, &len);
  if (rc != SASL_OK)
    return rc;
  if (result == nullptr) {
    out.clear();
  } else {
    out.assign(result, len != 0 ? len : std::strlen(result));
  }
  return SASL_OK;
}

}  // namespace

std::expected<MailboxLookup, Failure> MailboxSource::Get(
    const sasl_utils_t* utils, sasl_interact_t** prompt_need) {
  // The host answered our prompt list: that answer is the mailbox.
  if (prompts_ && prompt_need && *prompt_need == prompts_.get()) {
    return MailboxLookup{false, TakeAnswer(prompt_need)};
  }
  prompts_.reset();

  // The authentication name, by callback or by prompt.
  std::string authname;
  int rc = CallSimple(utils, SASL_CB_AUTHNAME, authname);
  if (rc == SASL_INTERACT) {
    if (prompt_need == nullptr) {
      return std::unexpected(
          Bug(SASL_BADPARAM,
              "the application registered SASL_CB_AUTHNAME without a "
              "function but passes no prompt list to answer"));
    }
    Ask(prompt_need);
    return MailboxLookup{true, {}};
  }
  if (rc == SASL_OK && protocol::IsValidMailbox(authname)) {
    return MailboxLookup{false, std::move(authname)};
  }

  // Fall back to the authorization name when it is a mailbox.
  std::string user;
  if (CallSimple(utils, SASL_CB_USER, user) == SASL_OK &&
      protocol::IsValidMailbox(user)) {
    return MailboxLookup{false, std::move(user)};
  }
  return MailboxLookup{false, rc == SASL_OK ? authname : std::string()};
}

std::string MailboxSource::TakeAnswer(sasl_interact_t** prompt_need) {
  const sasl_interact_t& prompt = prompts_[0];
  std::string answer;
  if (prompt.result != nullptr) {
    answer.assign(static_cast<const char*>(prompt.result), prompt.len);
  }
  prompts_.reset();
  *prompt_need = nullptr;
  return answer;
}

void MailboxSource::Ask(sasl_interact_t** prompt_need) {
  prompts_ = std::make_unique<sasl_interact_t[]>(2);
  prompts_[0].id = SASL_CB_AUTHNAME;
  prompts_[0].challenge = mechanism_;
  prompts_[0].prompt = "Mailbox to send as (local@domain): ";
  prompts_[0].defresult = nullptr;
  prompts_[1].id = SASL_CB_LIST_END;
  *prompt_need = prompts_.get();
}

}  // namespace xoauth2::plugin
