# pragma version ~=0.4.0
"""
@title tenchat test token
@notice A minimal ERC-20 for tenchat's tests on a local node (anvil): the deployer
        gets the whole supply. Not for real money.
"""

event Transfer:
    sender: indexed(address)
    receiver: indexed(address)
    value: uint256

event Approval:
    owner: indexed(address)
    spender: indexed(address)
    value: uint256

name: public(String[32])
symbol: public(String[8])
decimals: public(uint8)
totalSupply: public(uint256)
balanceOf: public(HashMap[address, uint256])
allowance: public(HashMap[address, HashMap[address, uint256]])
owner: public(address)
# Accounts whose transfers revert: lets tests see a transfer the chain refuses.
frozen: public(HashMap[address, bool])


@deploy
def __init__(_name: String[32], _symbol: String[8], _decimals: uint8, _supply: uint256):
    self.name = _name
    self.symbol = _symbol
    self.decimals = _decimals
    self.totalSupply = _supply
    self.balanceOf[msg.sender] = _supply
    self.owner = msg.sender
    log Transfer(sender=empty(address), receiver=msg.sender, value=_supply)


@external
def freeze(_account: address, _frozen: bool):
    assert msg.sender == self.owner, "only the owner freezes"
    self.frozen[_account] = _frozen


@external
def transfer(_to: address, _value: uint256) -> bool:
    assert not self.frozen[msg.sender], "account frozen"
    assert self.balanceOf[msg.sender] >= _value, "insufficient balance"
    self.balanceOf[msg.sender] -= _value
    self.balanceOf[_to] += _value
    log Transfer(sender=msg.sender, receiver=_to, value=_value)
    return True


@external
def approve(_spender: address, _value: uint256) -> bool:
    self.allowance[msg.sender][_spender] = _value
    log Approval(owner=msg.sender, spender=_spender, value=_value)
    return True


@external
def transferFrom(_from: address, _to: address, _value: uint256) -> bool:
    assert not self.frozen[_from], "account frozen"
    assert self.balanceOf[_from] >= _value, "insufficient balance"
    assert self.allowance[_from][msg.sender] >= _value, "insufficient allowance"
    self.balanceOf[_from] -= _value
    self.allowance[_from][msg.sender] -= _value
    self.balanceOf[_to] += _value
    log Transfer(sender=_from, receiver=_to, value=_value)
    return True
