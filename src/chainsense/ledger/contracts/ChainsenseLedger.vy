# pragma version 0.4.3
# pragma evm-version paris
"""
@title ChainsenseLedger
@notice Crowdsensing records countersigned by a certificate authority (CA).
        Per-record mode: the MT that collected a record submits it with the CA's EIP-712
        signature over exactly that record; the contract checks the signature, rejects
        duplicates and replayed nonces, stores the record and indexes it by MT, PoI and slot.
        Batch mode: a submitter anchors the Merkle root of many CA-certified records with the
        CA's signature over (root, size, submitter); inclusion proofs are checked by
        `verify_inclusion` / `verify_record` (sorted-pair keccak tree, leaf = keccak(digest)).
        No loop is unbounded (proofs <= 32 levels, pages <= 100 entries, slot counts <= 1024
        slots) and nothing depends on block timestamps. No function makes an external call.
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

struct StoredRecord:
    record_id: uint256
    digest: bytes32
    mt: address
    poi: uint32
    slot: uint32
    reading: uint64
    x: uint64
    y: uint64
    nonce: uint64

struct Batch:
    root_id: uint256
    root: bytes32
    size: uint32
    submitter: address

event RecordStored:
    record_id: indexed(uint256)
    mt: indexed(address)
    poi: indexed(uint32)
    slot: uint32
    digest: bytes32
    ca_signature: Bytes[65]

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
# secp256k1 order / 2: signatures with a larger s are malleated copies and are refused
HALF_N: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168
MAX_PROOF: constant(uint256) = 32
MAX_PAGE: constant(uint256) = 100
MAX_SLOT_COUNTS: constant(uint256) = 1024

admin: public(address)
ca: public(address)

record_count: public(uint256)
record_id_of: public(HashMap[bytes32, uint256])
nonce_used: public(HashMap[address, HashMap[uint64, bool]])
# record id -> EIP-712 digest, and the record packed in two words:
# word a = poi << 224 | slot << 192 | reading << 128 | x << 64 | y, word b = mt << 64 | nonce
_digest: HashMap[uint256, bytes32]
_word_a: HashMap[uint256, uint256]
_word_b: HashMap[uint256, uint256]

mt_record_count: public(HashMap[address, uint256])
_by_mt: HashMap[address, HashMap[uint256, uint256]]
poi_record_count: public(HashMap[uint32, uint256])
_by_poi: HashMap[uint32, HashMap[uint256, uint256]]
slot_record_count: public(HashMap[uint32, uint256])
_by_slot: HashMap[uint32, HashMap[uint256, uint256]]

batch_count: public(uint256)
root_id_of: public(HashMap[bytes32, uint256])
_roots: HashMap[uint256, bytes32]
# root id -> size << 160 | submitter
_batch_meta: HashMap[uint256, uint256]


@deploy
def __init__(ca: address):
    assert ca != empty(address), "CA address is zero"
    self.admin = msg.sender
    self.ca = ca
    log CARotated(old_ca=empty(address), new_ca=ca)


@view
@internal
def _domain_separator() -> bytes32:
    return keccak256(abi_encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))


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


@view
@internal
def _load(record_id: uint256) -> StoredRecord:
    a: uint256 = self._word_a[record_id]
    b: uint256 = self._word_b[record_id]
    mask64: uint256 = 2**64 - 1
    mask32: uint256 = 2**32 - 1
    return StoredRecord(
        record_id=record_id,
        digest=self._digest[record_id],
        mt=convert(convert(b >> 64, uint160), address),
        poi=convert(a >> 224, uint32),
        slot=convert((a >> 192) & mask32, uint32),
        reading=convert((a >> 128) & mask64, uint64),
        x=convert((a >> 64) & mask64, uint64),
        y=convert(a & mask64, uint64),
        nonce=convert(b & mask64, uint64),
    )


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
def submit(rec: Record, ca_signature: Bytes[65]) -> uint256:
    """
    @notice Store one record; the sender must be the record's MT and the CA must have signed
            the record's EIP-712 digest for this chain and this contract.
    @return the new record id (ids start at 1)
    """
    assert rec.mt == msg.sender, "sender is not the record's MT"
    digest: bytes32 = self._record_digest(rec)
    assert self.record_id_of[digest] == 0, "duplicate record"
    assert not self.nonce_used[rec.mt][rec.nonce], "nonce already used by this MT"
    assert self._recover(digest, ca_signature) == self.ca, "bad CA signature"

    rid: uint256 = self.record_count + 1
    self.record_count = rid
    self.record_id_of[digest] = rid
    self.nonce_used[rec.mt][rec.nonce] = True
    self._digest[rid] = digest
    self._word_a[rid] = (
        convert(rec.poi, uint256) << 224
        | convert(rec.slot, uint256) << 192
        | convert(rec.reading, uint256) << 128
        | convert(rec.x, uint256) << 64
        | convert(rec.y, uint256)
    )
    self._word_b[rid] = convert(convert(rec.mt, uint160), uint256) << 64 | convert(
        rec.nonce, uint256
    )
    n: uint256 = self.mt_record_count[rec.mt]
    self._by_mt[rec.mt][n] = rid
    self.mt_record_count[rec.mt] = n + 1
    n = self.poi_record_count[rec.poi]
    self._by_poi[rec.poi][n] = rid
    self.poi_record_count[rec.poi] = n + 1
    n = self.slot_record_count[rec.slot]
    self._by_slot[rec.slot][n] = rid
    self.slot_record_count[rec.slot] = n + 1
    log RecordStored(
        record_id=rid,
        mt=rec.mt,
        poi=rec.poi,
        slot=rec.slot,
        digest=digest,
        ca_signature=ca_signature,
    )
    return rid


@view
@external
def get_record(record_id: uint256) -> StoredRecord:
    assert record_id >= 1 and record_id <= self.record_count, "no such record"
    return self._load(record_id)


@view
@external
def records(start: uint256, count: uint256) -> DynArray[StoredRecord, MAX_PAGE]:
    """@notice Records with ids start, start+1, ... (at most `count`, at most 100)."""
    out: DynArray[StoredRecord, MAX_PAGE] = []
    last: uint256 = self.record_count
    for i: uint256 in range(MAX_PAGE):
        if i >= count or start + i > last:
            break
        if start + i >= 1:
            out.append(self._load(start + i))
    return out


@view
@external
def records_of_mt(mt: address, start: uint256, count: uint256) -> DynArray[StoredRecord, MAX_PAGE]:
    """@notice Page of the MT's records in submission order (index `start`, 0-based)."""
    out: DynArray[StoredRecord, MAX_PAGE] = []
    total: uint256 = self.mt_record_count[mt]
    for i: uint256 in range(MAX_PAGE):
        if i >= count or start + i >= total:
            break
        out.append(self._load(self._by_mt[mt][start + i]))
    return out


@view
@external
def records_of_poi(poi: uint32, start: uint256, count: uint256) -> DynArray[StoredRecord, MAX_PAGE]:
    out: DynArray[StoredRecord, MAX_PAGE] = []
    total: uint256 = self.poi_record_count[poi]
    for i: uint256 in range(MAX_PAGE):
        if i >= count or start + i >= total:
            break
        out.append(self._load(self._by_poi[poi][start + i]))
    return out


@view
@external
def records_of_slot(slot: uint32, start: uint256, count: uint256) -> DynArray[StoredRecord, MAX_PAGE]:
    out: DynArray[StoredRecord, MAX_PAGE] = []
    total: uint256 = self.slot_record_count[slot]
    for i: uint256 in range(MAX_PAGE):
        if i >= count or start + i >= total:
            break
        out.append(self._load(self._by_slot[slot][start + i]))
    return out


@view
@external
def slot_counts(first: uint32, count: uint256) -> DynArray[uint256, MAX_SLOT_COUNTS]:
    """
    @notice Record counts of slots first, first+1, ... (at most `count`, at most 1024, never
            past slot 2^32 - 1), so that a slot-range query makes one call per 1024 slots and
            page calls only for slots that hold records.
    """
    out: DynArray[uint256, MAX_SLOT_COUNTS] = []
    start: uint256 = convert(first, uint256)
    end: uint256 = min(start + min(count, MAX_SLOT_COUNTS), convert(max_value(uint32), uint256) + 1)
    for slot: uint256 in range(start, end, bound=MAX_SLOT_COUNTS):
        out.append(self.slot_record_count[convert(slot, uint32)])
    return out


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
    assert self._recover(digest, ca_signature) == self.ca, "bad CA signature"

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
    old: address = self.ca
    self.ca = new_ca
    log CARotated(old_ca=old, new_ca=new_ca)


@external
def transfer_admin(new_admin: address):
    assert msg.sender == self.admin, "only the admin can transfer admin"
    assert new_admin != empty(address), "admin address is zero"
    old: address = self.admin
    self.admin = new_admin
    log AdminTransferred(old_admin=old, new_admin=new_admin)
