"""The electronic licence system (电子证照): licence types, issuing, use and verification.

Kept import-light on purpose: :mod:`exchange.licences.token`,
:mod:`exchange.licences.verifier` and :mod:`exchange.licences.numbers` are shared with the
SDK's offline verifier (:mod:`exchange.client`), which must not pull in the server.
"""
