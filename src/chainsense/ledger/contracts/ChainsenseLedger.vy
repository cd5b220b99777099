# pragma version 0.4.3
# pragma evm-version paris
"""
@title ChainsenseLedger
@notice Crowdsensing records countersigned by a certificate authority (CA).
        Per-record mode: the MT that collected a record submits it with the CA's EIP-712
        signature over exactly that record; the contract checks the signature, rejects
        duplicates and replayed nonces, keeps one storage word per record (its digest, keyed
        by (MT, nonce)) and emits the record in a log whose four topics (record id, MT, PoI,
        slot) make it queryable by `eth_getLogs` (docs/ledger.md: what moved to logs).
        Batch mode: a submitter anchors the Merkle root of many CA-certified records with the
        CA's signature over (root, size, submitter); inclusion proofs are checked by
        `verify_inclusion` / `verify_record` (sorted-pair keccak tree, leaf = keccak(digest)).
        No loop is unbounded (proofs <= 32 levels, digest pages <= 500 entries) and nothing
        depends on block timestamps. No function makes an external call.
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

event BatchAnchored:
    root_id: indexed(uint256)
    root: indexed(bytes32)
    submitter: indexed(address)
    size: uint32
    ca_signature: Bytes[65]

event CARotated:
    old_ca: indexed(address)
    new_ca: indexed(address)

event AdminTransferred:
    old_admin: indexed(address)
    new_admin: indexed(address)

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
MASK32: constant(uint256) = 2**32 - 1
MASK64: constant(uint256) = 2**64 - 1
MASK160: constant(uint256) = 2**160 - 1
LOW255: constant(uint256) = 2**255 - 1
# secp256k1 order / 2: signatures with a larger s are malleated copies and are refused
HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168
MAX_PROOF: constant(uint256) = 32
MAX_DIGESTS: constant(uint256) = 500
# signatures a submit carries: one CA today; the list (and the log that carries it) is the
# form a k-of-n consortium of CAs will use
MAX_CA_SIGNATURES: constant(uint256) = 1

admin: public(address)
# the CA's address (low 160 bits) and the number of stored records (the bits above) share a
# word: a submit reads it cold once and writes it warm once
_ca_and_count: uint256
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
def __init__(ca: address):
    assert ca != empty(address), "CA address is zero"
    self.admin = msg.sender
    self._ca_and_count = convert(convert(ca, uint160), uint256)
    DEPLOY_BLOCK = block.number
    _DEPLOY_CHAIN_ID = chain.id
    _DOMAIN_SEPARATOR = keccak256(abi_encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))
    log CARotated(old_ca=empty(address), new_ca=ca)


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
def _recover(digest: bytes32, sig: Bytes[65]) -> address:
    assert len(sig) == 65, "CA signature must be 65 bytes"
    r: uint256 = extract32(sig, 0, output_type=uint256)
    s: uint256 = extract32(sig, 32, output_type=uint256)
    v: uint256 = convert(slice(sig, 64, 1), uint256)
    if v < 27:
        v += 27
    assert v == 27 or v == 28, "bad signature v"
    assert s <= HALF_N, "non-canonical signature s"
    return ecrecover(digest, v, r, s)


@pure
@internal
def _recover_compact(digest: bytes32, sig: CompactSignature) -> address:
    vs: uint256 = convert(sig.vs, uint256)
    s: uint256 = vs & LOW255
    assert s <= HALF_N, "non-canonical signature s"
    return ecrecover(digest, 27 + (vs >> 255), convert(sig.r, uint256), s)


@view
@internal
def _ca() -> address:
    return convert(convert(self._ca_and_count & MASK160, uint160), address)


@view
@external
def ca() -> address:
    return self._ca()


@view
@external
def record_count() -> uint256:
    return self._ca_and_count >> 160


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


@external
def submit(
    fields: uint256, nonce: uint64, signatures: DynArray[CompactSignature, MAX_CA_SIGNATURES]
) -> uint256:
    """
    @notice Store one record of the sender (the record's MT): fields = poi << 224 | slot << 192
            | reading << 128 | x << 64 | y. The CA must have signed the record's EIP-712 digest
            for this chain and this contract (a record signed for another MT therefore fails
            as a bad CA signature).
    @return the new record id (ids start at 1)
    """
    digest: bytes32 = self._packed_digest(msg.sender, fields, nonce)
    stored: bytes32 = self._digest_of[msg.sender][nonce]
    if stored != empty(bytes32):
        assert stored != digest, "duplicate record"
        raise "nonce already used by this MT"
    assert len(signatures) == 1, "exactly one CA signature"
    state: uint256 = self._ca_and_count
    ca: address = convert(convert(state & MASK160, uint160), address)
    assert self._recover_compact(digest, signatures[0]) == ca, "bad CA signature"

    rid: uint256 = (state >> 160) + 1
    assert rid <= MASK64, "record ids exhausted"
    self._ca_and_count = state + (1 << 160)
    self._digest_of[msg.sender][nonce] = digest
    raw_log(
        [
            convert(RECORD_LOG_TAG | rid, bytes32),
            convert(convert(convert(msg.sender, uint160), uint256), bytes32),
            convert(fields >> 224, bytes32),
            convert((fields >> 192) & MASK32, bytes32),
        ],
        concat(
            convert((fields & (2**192 - 1)) << 64 | convert(nonce, uint256), bytes32),
            signatures[0].r,
            signatures[0].vs,
        ),
    )
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
def anchor_batch(root: bytes32, size: uint32, ca_signature: Bytes[65]) -> uint256:
    """
    @notice Anchor the Merkle root of `size` CA-certified records; the CA must have signed
            (root, size, msg.sender).
    @return the new root id (ids start at 1)
    """
    assert size > 0, "empty batch"
    assert root != empty(bytes32), "zero root"
    assert self.root_id_of[root] == 0, "duplicate batch root"
    digest: bytes32 = self._batch_digest(root, size, msg.sender)
    assert self._recover(digest, ca_signature) == self._ca(), "bad CA signature"

    bid: uint256 = self.batch_count + 1
    self.batch_count = bid
    self.root_id_of[root] = bid
    self._roots[bid] = root
    self._batch_meta[bid] = convert(size, uint256) << 160 | convert(
        convert(msg.sender, uint160), uint256
    )
    log BatchAnchored(
        root_id=bid, root=root, submitter=msg.sender, size=size, ca_signature=ca_signature
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


@external
def set_ca(new_ca: address):
    """@notice Rotate the CA key; records signed by the old key are refused from now on."""
    assert msg.sender == self.admin, "only the admin can rotate the CA"
    assert new_ca != empty(address), "CA address is zero"
    old: address = self._ca()
    self._ca_and_count = (self._ca_and_count >> 160) << 160 | convert(convert(new_ca, uint160), uint256)
    log CARotated(old_ca=old, new_ca=new_ca)


@external
def transfer_admin(new_admin: address):
    assert msg.sender == self.admin, "only the admin can transfer admin"
    assert new_admin != empty(address), "admin address is zero"
    old: address = self.admin
    self.admin = new_admin
    log AdminTransferred(old_admin=old, new_admin=new_admin)
