// SPDX-License-Identifier: MIT
//
// Gets the mailbox to authenticate as from the SASL host application: the
// SASL_CB_AUTHNAME callback (Postfix: the user part of the
// smtp_sasl_password_maps entry), falling back to SASL_CB_USER, or, when
// the host registered AUTHNAME without a function, through the
// sasl_interact_t prompt protocol (SASL_INTERACT).
//
// Main type: MailboxSource, one per exchange, owning the prompt array it
// hands to the host until the host answers or the exchange is disposed.
// Never asks for a password: neither mechanism here takes one. No logging, no
// global state. Follows RFC 4422 §3 and the Cyrus SASL plugin interface
// (saslplug.h).

#ifndef XOAUTH2_SASL_PLUGIN_MAILBOX_SOURCE_H
#define XOAUTH2_SASL_PLUGIN_MAILBOX_SOURCE_H

#include <sasl/sasl.h>
#include <sasl/saslplug.h>

#include <expected>
#include <memory>
#include <string>

#include "failure.h"

namespace xoauth2::plugin {

// The outcome of one lookup: a mailbox (still to be checked with
// CheckMailbox), or a request that the host fill in the prompts.
struct MailboxLookup {
  bool needs_interaction = false;
  std::string mailbox;
};

class MailboxSource {
 public:
  // `mechanism` is the SASL mechanism name shown to the host as the
  // prompt's challenge; it must outlive this object (a string literal).
  explicit MailboxSource(const char* mechanism) : mechanism_(mechanism) {}

  // Looks up the mailbox. On needs_interaction, *prompt_need points to a
  // prompt list owned by this object; the host fills it and steps again
  // with the same pointer, and the next Get reads the answer from it.
  std::expected<MailboxLookup, Failure> Get(const sasl_utils_t* utils,
                                            sasl_interact_t** prompt_need);

 private:
  // Reads the host's answer to our prompt list and releases it.
  std::string TakeAnswer(sasl_interact_t** prompt_need);

  // Fills a fresh prompt list for the host.
  void Ask(sasl_interact_t** prompt_need);

  const char* mechanism_;
  std::unique_ptr<sasl_interact_t[]> prompts_;
};

}  // namespace xoauth2::plugin

#endif  // XOAUTH2_SASL_PLUGIN_MAILBOX_SOURCE_H
