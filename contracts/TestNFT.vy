# pragma version ~=0.4.0
"""
@title tenchat test NFT
@notice A minimal ERC-721 (no safe-transfer receiver hooks) for tenchat's tests on a
        local node: the deployer mints. Not for real assets.
"""

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    tokenId: indexed(uint256)

event Approval:
    owner: indexed(address)
    approved: indexed(address)
    tokenId: indexed(uint256)

name: public(String[32])
symbol: public(String[8])
minter: public(address)
balanceOf: public(HashMap[address, uint256])
owners: HashMap[uint256, address]
getApproved: public(HashMap[uint256, address])
uris: HashMap[uint256, String[4096]]


@deploy
def __init__(_name: String[32], _symbol: String[8]):
    self.name = _name
    self.symbol = _symbol
    self.minter = msg.sender


@view
@external
def ownerOf(_tokenId: uint256) -> address:
    owner: address = self.owners[_tokenId]
    assert owner != empty(address), "no such token"
    return owner


@external
def mint(_to: address, _tokenId: uint256):
    assert msg.sender == self.minter, "only the minter mints"
    assert self.owners[_tokenId] == empty(address), "already minted"
    self.owners[_tokenId] = _to
    self.balanceOf[_to] += 1
    log Transfer(sender=empty(address), receiver=_to, tokenId=_tokenId)


@view
@external
def tokenURI(_tokenId: uint256) -> String[4096]:
    assert self.owners[_tokenId] != empty(address), "no such token"
    return self.uris[_tokenId]


@external
def setTokenURI(_tokenId: uint256, _uri: String[4096]):
    assert msg.sender == self.minter, "only the minter sets URIs"
    self.uris[_tokenId] = _uri


@external
def approve(_approved: address, _tokenId: uint256):
    assert self.owners[_tokenId] == msg.sender, "not the owner"
    self.getApproved[_tokenId] = _approved
    log Approval(owner=msg.sender, approved=_approved, tokenId=_tokenId)


@external
def transferFrom(_from: address, _to: address, _tokenId: uint256):
    owner: address = self.owners[_tokenId]
    assert owner == _from, "not the owner"
    assert msg.sender == owner or msg.sender == self.getApproved[_tokenId], "not allowed"
    self.owners[_tokenId] = _to
    self.getApproved[_tokenId] = empty(address)
    self.balanceOf[_from] -= 1
    self.balanceOf[_to] += 1
    log Transfer(sender=_from, receiver=_to, tokenId=_tokenId)
