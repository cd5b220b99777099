# pragma version 0.4.3
# pragma evm-version paris
"""
@title ChainsenseLedger
@notice Crowdsensing records countersigned by k of the n certificate authorities (CAs) of a
        consortium. Per-record mode: the MT that collected a record submits it with k CA
        EIP-712 signatures over exactly that record, ordered by strictly increasing signer
        address (k distinct CAs of the current set, checked on chain); the contract refuses
        revoked MTs, duplicates and replayed nonces, keeps one storage word per record (its
        digest, keyed by (MT, nonce)) and emits the record in a log whose four topics (record
        id, MT, PoI, slot) make it queryable by `eth_getLogs` (docs/ledger.md).
        Batch mode: a submitter anchors the Merkle root of many CA-certified records with k CA
        signatures over (root, size, submitter); inclusion proofs are checked by
        `verify_inclusion` / `verify_record` (sorted-pair keccak tree, leaf = keccak(digest)).
        Governance has no admin: a change of the CA set or of k, and the revocation of an MT,
        is a proposal that takes effect when k CAs of the current set have approved it (each
        CA approves with a transaction from its key).
        No loop is unbounded (proofs <= 32 levels, digest pages <= 500 entries, <= 16 CAs) and
        nothing depends on block timestamps. No function makes an external call.
        Compiled for the Paris EVM (no PUSH0) so the same bytecode runs on geth 1.13 Clique
        networks (London rules), anvil and the embedded py-evm chain.
"""

struct Record:
    mt: address
    poi: uint32
    slot: uint32
    reading: uint64
    x: uint64
    y: uint64
    nonce: uint64

# EIP-2098 compact signature: s with the recovery bit (v - 27) in its top bit, 64 bytes
struct CompactSignature:
    r: bytes32
    vs: bytes32

struct Batch:
    root_id: uint256
    root: bytes32
    size: uint32
    submitter: address

struct Proposal:
    kind: uint256        # KIND_CA_SET or KIND_REVOKE_MT
    epoch: uint256       # the CA-set epoch it was made in; only that epoch's CAs approve it
    approvals: uint256   # bitmap over the indices of the epoch's CA set
    executed: bool
    cas: DynArray[address, MAX_CAS]
    threshold: uint256
    mt: address

event BatchAnchored:
    root_id: indexed(uint256)
    root: indexed(bytes32)
    submitter: indexed(address)
    size: uint32
    ca_signatures: DynArray[CompactSignature, MAX_CA_SIGNATURES]

event CASetChanged:
    epoch: indexed(uint256)
    cas: DynArray[address, MAX_CAS]
    threshold: uint256

event MTRevoked:
    mt: indexed(address)
    proposal: indexed(bytes32)

event Proposed:
    proposal: indexed(bytes32)
    proposer: indexed(address)
    kind: uint256
    epoch: uint256
    cas: DynArray[address, MAX_CAS]
    threshold: uint256
    mt: address

event Approved:
    proposal: indexed(bytes32)
    ca: indexed(address)
    approvals: uint256

event Executed:
    proposal: indexed(bytes32)

DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
RECORD_TYPEHASH: constant(bytes32) = keccak256(
    "Record(address mt,uint32 poi,uint32 slot,uint64 reading,uint64 x,uint64 y,uint64 nonce)"
)
BATCH_TYPEHASH: constant(bytes32) = keccak256("Batch(bytes32 root,uint32 size,address submitter)")
NAME_HASH: constant(bytes32) = keccak256("chainsense")
VERSION_HASH: constant(bytes32) = keccak256("1")
# topic 0 of a stored record's log: the high 192 bits of
# keccak256("RecordStored(uint64,address,uint32,uint32,uint256,bytes)") with the record id in
# the low 64 bits, so that one topic both names the log and indexes the id (four indexed values
# in all, one more than a named event allows)
RECORD_LOG_TAG: constant(uint256) = 81324544692296856192598757165735297667893854107040775566547286465847769432064
MASK8: constant(uint256) = 2**8 - 1
MASK32: constant(uint256) = 2**32 - 1
MASK64: constant(uint256) = 2**64 - 1
MASK160: constant(uint256) = 2**160 - 1
LOW255: constant(uint256) = 2**255 - 1
# secp256k1 order / 2: signatures with a larger s are malleated copies and are refused
HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168
MAX_PROOF: constant(uint256) = 32
MAX_DIGESTS: constant(uint256) = 500
MAX_CAS: constant(uint256) = 16
MAX_CA_SIGNATURES: constant(uint256) = 16
KIND_CA_SET: constant(uint256) = 1
KIND_REVOKE_MT: constant(uint256) = 2
# the state word: record count (bits 0-63), k (64-71), n (72-79), "some MT is revoked" (bit
# 80) and, when n = 1, the one CA's address (bits 96-255). A submit reads it cold once and
# writes it warm once; with one CA and no revocation it needs no other read than the digest
THRESHOLD_SHIFT: constant(uint256) = 64
SIZE_SHIFT: constant(uint256) = 72
ANY_REVOKED: constant(uint256) = 2**80
SOLE_CA_SHIFT: constant(uint256) = 96

_state: uint256
# the current CA set (increasing addresses) and address -> 1 + index in it (0: not a CA)
_cas: DynArray[address, MAX_CAS]
_ca_index: HashMap[address, uint256]
# number of CA-set changes so far; proposals are bound to the epoch they were made in
ca_epoch: public(uint256)
_revoked: HashMap[address, bool]
_proposals: HashMap[bytes32, Proposal]
# (MT, nonce) -> EIP-712 digest of the record stored under that nonce: the duplicate check,
# the nonce check and on-chain verification in one storage word per record
_digest_of: HashMap[address, HashMap[uint64, bytes32]]

batch_count: public(uint256)
root_id_of: public(HashMap[bytes32, uint256])
_roots: HashMap[uint256, bytes32]
# root id -> size << 160 | submitter
_batch_meta: HashMap[uint256, uint256]

# where log scans start (a creation block is not otherwise readable from a node)
DEPLOY_BLOCK: public(immutable(uint256))
_DEPLOY_CHAIN_ID: immutable(uint256)
_DOMAIN_SEPARATOR: immutable(bytes32)


@deploy
def __init__(cas: DynArray[address, MAX_CAS], threshold: uint256):
    DEPLOY_BLOCK = block.number
    _DEPLOY_CHAIN_ID = chain.id
    _DOMAIN_SEPARATOR = keccak256(abi_encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))
    self._check_ca_set(cas, threshold)
    self._install_ca_set(cas, threshold)


@pure
@internal
def _check_ca_set(cas: DynArray[address, MAX_CAS], threshold: uint256):
    assert len(cas) > 0, "CA set is empty"
    assert cas[0] != empty(address), "CA address is zero"
    previous: uint256 = 0
    for ca: address in cas:
        word: uint256 = convert(convert(ca, uint160), uint256)
        assert word > previous, "CA addresses must be distinct and in increasing order"
        previous = word
    assert threshold >= 1, "threshold must be at least 1"
    assert threshold <= len(cas), "threshold above the number of CAs"


@internal
def _install_ca_set(cas: DynArray[address, MAX_CAS], threshold: uint256):
    """Replace the CA set and k (checked before); opens a new epoch: pending proposals of the
    old set can no longer be approved."""
    for old: address in self._cas:
        self._ca_index[old] = 0
    i: uint256 = 0
    for ca: address in cas:
        i += 1
        self._ca_index[ca] = i
    self._cas = cas
    state: uint256 = self._state & (MASK64 | ANY_REVOKED)
    state |= threshold << THRESHOLD_SHIFT | len(cas) << SIZE_SHIFT
    if len(cas) == 1:
        state |= convert(convert(cas[0], uint160), uint256) << SOLE_CA_SHIFT
    self._state = state
    self.ca_epoch += 1
    log CASetChanged(epoch=self.ca_epoch, cas=cas, threshold=threshold)


@view
@internal
def _domain_separator() -> bytes32:
    if chain.id == _DEPLOY_CHAIN_ID:
        return _DOMAIN_SEPARATOR
    return keccak256(abi_encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))


@view
@internal
def _packed_digest(mt: address, fields: uint256, nonce: uint64) -> bytes32:
    """EIP-712 digest of the record (mt, fields, nonce); fields = poi << 224 | slot << 192 |
    reading << 128 | x << 64 | y (uint256 words encode like the struct's narrower types)."""
    struct_hash: bytes32 = keccak256(
        abi_encode(
            RECORD_TYPEHASH,
            mt,
            fields >> 224,
            (fields >> 192) & MASK32,
            (fields >> 128) & MASK64,
            (fields >> 64) & MASK64,
            fields & MASK64,
            nonce,
        )
    )
    return keccak256(concat(x"1901", self._domain_separator(), struct_hash))


@view
@internal
def _record_digest(rec: Record) -> bytes32:
    struct_hash: bytes32 = keccak256(
        abi_encode(
            RECORD_TYPEHASH, rec.mt, rec.poi, rec.slot, rec.reading, rec.x, rec.y, rec.nonce
        )
    )
    return keccak256(concat(x"1901", self._domain_separator(), struct_hash))


@view
@internal
def _batch_digest(root: bytes32, size: uint32, submitter: address) -> bytes32:
    struct_hash: bytes32 = keccak256(abi_encode(BATCH_TYPEHASH, root, size, submitter))
    return keccak256(concat(x"1901", self._domain_separator(), struct_hash))


@pure
@internal
def _recover_compact(digest: bytes32, sig: CompactSignature) -> address:
    vs: uint256 = convert(sig.vs, uint256)
    s: uint256 = vs & LOW255
    assert s <= HALF_N, "non-canonical signature s"
    return ecrecover(digest, 27 + (vs >> 255), convert(sig.r, uint256), s)


@view
@internal
def _check_ca_signatures(
    digest: bytes32, signatures: DynArray[CompactSignature, MAX_CA_SIGNATURES], state: uint256
):
    """k signatures of ``digest`` by distinct CAs of the current set, in increasing signer
    order (which proves them distinct without a loop over pairs)."""
    assert len(signatures) == (state >> THRESHOLD_SHIFT) & MASK8, "wrong number of CA signatures"
    sole: uint256 = state >> SOLE_CA_SHIFT
    previous: uint256 = 0
    for sig: CompactSignature in signatures:
        signer: address = self._recover_compact(digest, sig)
        word: uint256 = convert(convert(signer, uint160), uint256)
        if word != sole or word == 0:
            assert word != 0 and self._ca_index[signer] != 0, "bad CA signature"
        assert word > previous, "CA signers must be distinct and in increasing order"
        previous = word


@view
@external
def record_count() -> uint256:
    return self._state & MASK64


@view
@external
def threshold() -> uint256:
    return (self._state >> THRESHOLD_SHIFT) & MASK8


@view
@external
def cas() -> DynArray[address, MAX_CAS]:
    """@notice The current CA set, by increasing address."""
    return self._cas


@view
@external
def is_ca(account: address) -> bool:
    return self._ca_index[account] != 0


@view
@external
def is_revoked(mt: address) -> bool:
    return self._revoked[mt]


@view
@external
def domain_separator() -> bytes32:
    return self._domain_separator()


@view
@external
def record_digest(rec: Record) -> bytes32:
    return self._record_digest(rec)


@view
@external
def batch_digest(root: bytes32, size: uint32, submitter: address) -> bytes32:
    return self._batch_digest(root, size, submitter)


@internal
def _log_record(
    rid: uint256,
    fields: uint256,
    packed: uint256,
    signatures: DynArray[CompactSignature, MAX_CA_SIGNATURES],
):
    """The log of a record with several signatures: the packed word, then each signature's 64
    bytes (a function of its own: its buffers stay out of the memory a one-signature submit
    touches)."""
    # abi_encode puts the array's offset and length between the word and the signatures
    encoded: Bytes[1120] = abi_encode(packed, signatures)
    raw_log(
        [
            convert(RECORD_LOG_TAG | rid, bytes32),
            convert(convert(convert(msg.sender, uint160), uint256), bytes32),
            convert(fields >> 224, bytes32),
            convert((fields >> 192) & MASK32, bytes32),
        ],
        concat(convert(packed, bytes32), slice(encoded, 96, 64 * len(signatures))),
    )


@external
def submit(
    fields: uint256, nonce: uint64, signatures: DynArray[CompactSignature, MAX_CA_SIGNATURES]
) -> uint256:
    """
    @notice Store one record of the sender (the record's MT): fields = poi << 224 | slot << 192
            | reading << 128 | x << 64 | y. k CAs must have signed the record's EIP-712 digest
            for this chain and this contract (a record signed for another MT therefore fails
            as a bad CA signature). ``signatures``: k EIP-2098 signatures, by increasing
            signer address; the log carries them as they were sent.
    @return the new record id (ids start at 1)
    """
    state: uint256 = self._state
    if state & ANY_REVOKED != 0:
        assert not self._revoked[msg.sender], "MT revoked"
    digest: bytes32 = self._packed_digest(msg.sender, fields, nonce)
    stored: bytes32 = self._digest_of[msg.sender][nonce]
    if stored != empty(bytes32):
        assert stored != digest, "duplicate record"
        raise "nonce already used by this MT"
    # k signatures by distinct CAs in increasing signer order (as _check_ca_signatures, inline:
    # an internal call would copy the whole signature list into memory)
    assert len(signatures) == (state >> THRESHOLD_SHIFT) & MASK8, "wrong number of CA signatures"
    sole: uint256 = state >> SOLE_CA_SHIFT
    previous: uint256 = 0
    for i: uint256 in range(len(signatures), bound=MAX_CA_SIGNATURES):
        vs: uint256 = convert(signatures[i].vs, uint256)
        assert vs & LOW255 <= HALF_N, "non-canonical signature s"
        signer: address = ecrecover(
            digest, 27 + (vs >> 255), convert(signatures[i].r, uint256), vs & LOW255
        )
        word: uint256 = convert(convert(signer, uint160), uint256)
        if word != sole or word == 0:
            assert word != 0 and self._ca_index[signer] != 0, "bad CA signature"
        assert word > previous, "CA signers must be distinct and in increasing order"
        previous = word

    rid: uint256 = (state & MASK64) + 1
    assert rid <= MASK64, "record ids exhausted"
    self._state = state + 1
    self._digest_of[msg.sender][nonce] = digest
    packed: uint256 = (fields & (2**192 - 1)) << 64 | convert(nonce, uint256)
    if len(signatures) == 1:
        raw_log(
            [
                convert(RECORD_LOG_TAG | rid, bytes32),
                convert(convert(convert(msg.sender, uint160), uint256), bytes32),
                convert(fields >> 224, bytes32),
                convert((fields >> 192) & MASK32, bytes32),
            ],
            concat(convert(packed, bytes32), signatures[0].r, signatures[0].vs),
        )
    else:
        self._log_record(rid, fields, packed, signatures)
    return rid


@view
@external
def stored_digest(mt: address, nonce: uint64) -> bytes32:
    """@notice Digest of the record stored under (mt, nonce); zero when none is."""
    return self._digest_of[mt][nonce]


@view
@external
def stored_digests(keys: DynArray[uint256, MAX_DIGESTS]) -> DynArray[bytes32, MAX_DIGESTS]:
    """@notice `stored_digest` of up to 500 (mt << 64 | nonce) keys in one call (for auditors)."""
    out: DynArray[bytes32, MAX_DIGESTS] = []
    for key: uint256 in keys:
        mt: address = convert(convert((key >> 64) & MASK160, uint160), address)
        out.append(self._digest_of[mt][convert(key & MASK64, uint64)])
    return out


@view
@external
def is_stored(rec: Record) -> bool:
    """@notice True when exactly this record is stored (per-record mode)."""
    return self._digest_of[rec.mt][rec.nonce] == self._record_digest(rec)


@external
def anchor_batch(
    root: bytes32, size: uint32, signatures: DynArray[CompactSignature, MAX_CA_SIGNATURES]
) -> uint256:
    """
    @notice Anchor the Merkle root of `size` CA-certified records; k CAs must have signed
            (root, size, msg.sender), by increasing signer address.
    @return the new root id (ids start at 1)
    """
    assert size > 0, "empty batch"
    assert root != empty(bytes32), "zero root"
    assert self.root_id_of[root] == 0, "duplicate batch root"
    digest: bytes32 = self._batch_digest(root, size, msg.sender)
    self._check_ca_signatures(digest, signatures, self._state)

    bid: uint256 = self.batch_count + 1
    self.batch_count = bid
    self.root_id_of[root] = bid
    self._roots[bid] = root
    self._batch_meta[bid] = convert(size, uint256) << 160 | convert(
        convert(msg.sender, uint160), uint256
    )
    log BatchAnchored(
        root_id=bid, root=root, submitter=msg.sender, size=size, ca_signatures=signatures
    )
    return bid


@view
@external
def get_batch(root_id: uint256) -> Batch:
    assert root_id >= 1 and root_id <= self.batch_count, "no such batch"
    meta: uint256 = self._batch_meta[root_id]
    return Batch(
        root_id=root_id,
        root=self._roots[root_id],
        size=convert(meta >> 160, uint32),
        submitter=convert(convert(meta & (2**160 - 1), uint160), address),
    )


@view
@internal
def _included(root_id: uint256, digest: bytes32, proof: DynArray[bytes32, MAX_PROOF]) -> bool:
    root: bytes32 = self._roots[root_id]
    if root == empty(bytes32):
        return False
    node: bytes32 = keccak256(digest)
    for sibling: bytes32 in proof:
        if convert(node, uint256) < convert(sibling, uint256):
            node = keccak256(concat(node, sibling))
        else:
            node = keccak256(concat(sibling, node))
    return node == root


@view
@external
def verify_inclusion(
    root_id: uint256, leaf: bytes32, proof: DynArray[bytes32, MAX_PROOF]
) -> bool:
    """@notice True when the record digest `leaf` is in the anchored batch `root_id`."""
    return self._included(root_id, leaf, proof)


@view
@external
def verify_record(root_id: uint256, rec: Record, proof: DynArray[bytes32, MAX_PROOF]) -> bool:
    """@notice True when exactly this record is in the anchored batch `root_id`."""
    return self._included(root_id, self._record_digest(rec), proof)


# --- governance: proposals approved by k CAs of the current set ---------------------------------
@internal
def _approve(pid: bytes32):
    """Record the sender's approval of proposal ``pid``; execute it at k approvals."""
    index: uint256 = self._ca_index[msg.sender]
    assert index != 0, "only a CA of the current set can propose or approve"
    p: Proposal = self._proposals[pid]
    assert p.kind != 0, "no such proposal"
    assert not p.executed, "proposal already executed"
    assert p.epoch == self.ca_epoch, "proposal is stale: the CA set changed since it was made"
    bit: uint256 = 1 << (index - 1)
    assert p.approvals & bit == 0, "already approved by this CA"
    approvals: uint256 = p.approvals | bit
    self._proposals[pid].approvals = approvals
    count: uint256 = 0
    for i: uint256 in range(MAX_CAS):
        count += (approvals >> i) & 1
    log Approved(proposal=pid, ca=msg.sender, approvals=count)
    if count < (self._state >> THRESHOLD_SHIFT) & MASK8:
        return
    self._proposals[pid].executed = True
    log Executed(proposal=pid)
    if p.kind == KIND_CA_SET:
        self._install_ca_set(p.cas, p.threshold)
    else:
        assert not self._revoked[p.mt], "MT already revoked"
        self._revoked[p.mt] = True
        self._state |= ANY_REVOKED
        log MTRevoked(mt=p.mt, proposal=pid)


@internal
def _propose(kind: uint256, cas: DynArray[address, MAX_CAS], threshold: uint256, mt: address) -> bytes32:
    assert self._ca_index[msg.sender] != 0, "only a CA of the current set can propose or approve"
    epoch: uint256 = self.ca_epoch
    pid: bytes32 = keccak256(abi_encode(kind, epoch, cas, threshold, mt))
    assert self._proposals[pid].kind == 0, "proposal exists: approve it instead"
    self._proposals[pid] = Proposal(
        kind=kind, epoch=epoch, approvals=0, executed=False, cas=cas, threshold=threshold, mt=mt
    )
    log Proposed(
        proposal=pid, proposer=msg.sender, kind=kind, epoch=epoch, cas=cas, threshold=threshold, mt=mt
    )
    self._approve(pid)
    return pid


@external
def propose_ca_set(cas: DynArray[address, MAX_CAS], threshold: uint256) -> bytes32:
    """
    @notice Propose a new CA set (increasing addresses) and threshold k: adds, removes and
            rotates CA keys and changes k. Counts as the proposer's approval.
    @return the proposal id, keccak256 of the action and the current epoch
    """
    self._check_ca_set(cas, threshold)
    return self._propose(KIND_CA_SET, cas, threshold, empty(address))


@external
def propose_revocation(mt: address) -> bytes32:
    """
    @notice Propose to revoke an MT: once executed, its submits are refused.
    @return the proposal id
    """
    assert mt != empty(address), "MT address is zero"
    assert not self._revoked[mt], "MT already revoked"
    return self._propose(KIND_REVOKE_MT, [], 0, mt)


@external
def approve(proposal: bytes32):
    """@notice Approve a pending proposal of the current epoch (executes it at k approvals)."""
    self._approve(proposal)


@view
@external
def get_proposal(proposal: bytes32) -> Proposal:
    return self._proposals[proposal]
