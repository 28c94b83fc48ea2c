"""dbus-fast before 1.85 (Debian 12's python3-dbus-fast is 1.84) writes a string's
length in characters, not bytes. A non-ASCII string (an error message that echoes a
caller's name, a comment in a guest's XML) then makes a malformed message and the bus
disconnects the sender: any caller could knock the daemon off the bus. Where the
installed dbus-fast has the bug, messages are marshalled by a copy of its own
pure-Python marshaller with the length fixed (the compiled one cannot be patched)."""
from __future__ import annotations

import importlib.util
import os
import struct
from copy import copy

from dbus_fast import Message, Variant
from dbus_fast._private import marshaller as _installed
from dbus_fast._private.constants import LITTLE_ENDIAN, PROTOCOL_VERSION, HeaderField

_UINT32 = struct.Struct("<I").pack


def has_length_bug() -> bool:
    data = Message(path="/", interface="a.b", member="M", signature="s", body=["é"])._marshall(False)
    return not data.endswith(b"\x02\x00\x00\x00\xc3\xa9\x00")


def _pure_marshaller_class():
    source = os.path.join(os.path.dirname(_installed.__file__), "marshaller.py")
    spec = importlib.util.spec_from_file_location("dbus_fast._private._storaged_marshaller", source)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)

    class FixedMarshaller(module.Marshaller):
        def write_string(self, value, type_=None) -> int:
            return self._write_string(value)

        def _write_string(self, value) -> int:
            data = value.encode()
            written = self._align(4) + 4
            self._buf += _UINT32(len(data))
            self._buf += data
            self._buf.append(0)
            return written + len(data) + 1

    return FixedMarshaller


def _marshall(marshaller, msg: Message, negotiate_unix_fd: bool) -> bytearray:
    """Message._marshall of dbus-fast 1.84, on the fixed marshaller."""
    body = marshaller(msg.signature, msg.body)._marshall()
    fields = []
    for field, kind, value in ((HeaderField.PATH, "o", msg.path), (HeaderField.INTERFACE, "s", msg.interface),
                               (HeaderField.MEMBER, "s", msg.member),
                               (HeaderField.ERROR_NAME, "s", msg.error_name),
                               (HeaderField.REPLY_SERIAL, "u", msg.reply_serial),
                               (HeaderField.DESTINATION, "s", msg.destination),
                               (HeaderField.SIGNATURE, "g", msg.signature)):
        if value:
            fields.append([field.value, Variant(kind, value, False)])
    if msg.unix_fds and negotiate_unix_fd:
        fields.append([HeaderField.UNIX_FDS.value, Variant("u", len(msg.unix_fds), False)])
    header = marshaller("yyyyuua(yv)", [LITTLE_ENDIAN, msg.message_type.value, msg.flags.value,
                                        PROTOCOL_VERSION, len(body), msg.serial, fields])
    header._marshall()
    header._align(8)
    return header._buffer() + body


def fix_writer(writer) -> None:
    """Make a connected MessageBus's writer marshal strings right, if dbus-fast does not."""
    if not has_length_bug():
        return
    marshaller = _pure_marshaller_class()

    def buffer_message(msg: Message, future=None) -> None:
        writer.messages.append((_marshall(marshaller, msg, writer.negotiate_unix_fd),
                                copy(msg.unix_fds), future))

    writer.buffer_message = buffer_message
