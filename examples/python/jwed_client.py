#!/usr/bin/env python3
"""Decrypt tokens through jwed's gRPC API over its Unix socket, with grpcio.

An application imports this module, or runs it as a command:

    python3 jwed_client.py --socket /run/jwed/jwed.sock --scope orders:read TOKEN
    printf '%s\\n' "$TOKEN_1" "$TOKEN_2" | python3 jwed_client.py --batch

The client compiles proto/jwed/v1/jwed.proto with grpc_tools.protoc into a
temporary directory when it first needs the messages, so no generated code is
kept. It looks for the proto directory in --proto-dir, then $JWED_PROTO_DIR,
then ../../proto (the repository layout), then ./proto next to this file (a
container image that copies the proto beside the script).

Exit status: 0 when every token is accepted, 2 when jwed rejects a token or
the call (the reason comes from the google.rpc.ErrorInfo detail), 1 when the
call fails for another reason, such as a missing socket.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shlex
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Iterable, NoReturn, Sequence, Union

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

DEFAULT_SOCKET = "/run/jwed/jwed.sock"
PROTO_DIR_ENV = "JWED_PROTO_DIR"
PROTO_FILE = "jwed/v1/jwed.proto"
# The ErrorInfo domain of every jwed rejection.
ERROR_DOMAIN = "jwed"
# jwed accepts at most this many tokens in one DecryptBatch call.
MAX_BATCH = 32
DEFAULT_TIMEOUT_SECONDS = 5.0
# Standard input larger than this is rejected. It fits 32 tokens of jwed's
# largest configurable size (tokens.max_bytes is at most 65536), one per line.
MAX_INPUT_BYTES = MAX_BATCH * (65536 + 2)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_REJECTED = 2

_SCRIPT_DIR = Path(__file__).resolve().parent
_STATUS_CODES = {code.value[0]: code for code in grpc.StatusCode}

# The compiled jwed_pb2 and jwed_pb2_grpc modules, set by load_protos().
_messages: ModuleType | None = None
_services: ModuleType | None = None


class ProtoError(Exception):
    """The proto file was not found or did not compile."""


@dataclass(frozen=True)
class TokenError:
    """A rejection by jwed: the status code, message and ErrorInfo of one token or call."""

    code: grpc.StatusCode
    message: str
    reason: str
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def refresh_required(self) -> bool:
        """Whether the token was once valid and the caller should obtain a new one."""
        return self.metadata.get("refresh_required") == "true"

    def describe(self) -> str:
        """Format the rejection as one line: reason, code, metadata and message."""
        parts = ["rejected", self.reason, f"[{self.code.name}]"]
        parts += [f"{key}={shlex.quote(value)}" for key, value in sorted(self.metadata.items())]
        return " ".join(parts) + f": {self.message}"


def find_proto_dir(explicit: str | None = None) -> Path:
    """Return the first directory that contains jwed/v1/jwed.proto, or raise ProtoError."""
    if explicit:
        candidates = [Path(explicit)]
    elif os.environ.get(PROTO_DIR_ENV):
        candidates = [Path(os.environ[PROTO_DIR_ENV])]
    else:
        candidates = [_SCRIPT_DIR.parent.parent / "proto", _SCRIPT_DIR / "proto"]
    for candidate in candidates:
        if (candidate / PROTO_FILE).is_file():
            return candidate
    searched = ", ".join(str(candidate / PROTO_FILE) for candidate in candidates)
    raise ProtoError(f"proto file not found at {searched}; pass --proto-dir or set {PROTO_DIR_ENV}")


def load_protos(proto_dir: str | Path | None = None) -> tuple[ModuleType, ModuleType]:
    """Compile jwed.proto and import its message and service modules.

    The first call compiles them. Later calls return the same modules and
    ignore proto_dir.
    """
    global _messages, _services
    if _messages is not None and _services is not None:
        return _messages, _services

    # Imported here so that importing this module stays cheap.
    from grpc_tools import protoc

    source_dir = find_proto_dir(str(proto_dir) if proto_dir else None)
    # grpc_tools ships google/protobuf/*.proto, which jwed.proto imports.
    well_known_dir = Path(protoc.__file__).resolve().parent / "_proto"
    with tempfile.TemporaryDirectory(prefix="jwed-proto-") as output_dir:
        arguments = [
            "grpc_tools.protoc",
            f"--proto_path={source_dir}",
            f"--proto_path={well_known_dir}",
            f"--python_out={output_dir}",
            f"--grpc_python_out={output_dir}",
            str(source_dir / PROTO_FILE),
        ]
        if protoc.main(arguments) != 0:
            raise ProtoError(f"protoc failed to compile {source_dir / PROTO_FILE}; its errors are above")

        # The generated code imports its messages as jwed.v1.jwed_pb2. The
        # modules stay loaded after the directory is removed.
        sys.path.insert(0, output_dir)
        try:
            _messages = importlib.import_module("jwed.v1.jwed_pb2")
            _services = importlib.import_module("jwed.v1.jwed_pb2_grpc")
        finally:
            sys.path.remove(output_dir)
    return _messages, _services


def connect(socket_path: str | os.PathLike[str] = DEFAULT_SOCKET) -> grpc.Channel:
    """Open a plaintext channel to jwed's Unix socket.

    grpcio sends the socket path as the HTTP/2 :authority of a unix: target,
    and the HTTP/2 server under jwed's tonic resets such streams (grpcio
    1.85 reports INTERNAL, RST_STREAM). So the channel sets
    grpc.default_authority to "localhost".
    """
    return grpc.insecure_channel(
        f"unix:{os.fspath(socket_path)}",
        options=[("grpc.default_authority", "localhost")],
    )


def _stub(channel_or_stub: grpc.Channel | object) -> object:
    if isinstance(channel_or_stub, grpc.Channel):
        _, services = load_protos()
        return services.DecryptorStub(channel_or_stub)
    return channel_or_stub


def _request(token: str, scopes: Iterable[str], audience: str) -> object:
    messages, _ = load_protos()
    return messages.DecryptRequest(token=token, required_scopes=list(scopes), audience=audience)


def rejection_from_error(error: grpc.RpcError) -> TokenError | None:
    """Return the jwed rejection in a failed call, or None when the status has no jwed ErrorInfo."""
    status = rpc_status.from_call(error)
    if status is None:
        return None
    for detail in status.details:
        if not detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            continue
        info = error_details_pb2.ErrorInfo()
        detail.Unpack(info)
        if info.domain == ERROR_DOMAIN:
            return TokenError(
                code=error.code(),
                message=status.message,
                reason=info.reason,
                metadata=dict(info.metadata),
            )
    return None


def decrypt(
    channel_or_stub: grpc.Channel | object,
    token: str,
    scopes: Sequence[str] = (),
    audience: str = "",
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Union[object, TokenError]:
    """Decrypt one token and return the DecryptResponse, or a TokenError when jwed rejects it.

    Raises grpc.RpcError when the call fails without a jwed rejection, for
    example when the socket does not exist or nothing listens on it.
    """
    stub = _stub(channel_or_stub)
    try:
        return stub.Decrypt(_request(token, scopes, audience), timeout=timeout)
    except grpc.RpcError as error:
        rejection = rejection_from_error(error)
        if rejection is None:
            raise
        return rejection


def decrypt_batch(
    channel_or_stub: grpc.Channel | object,
    tokens: Sequence[str],
    scopes: Sequence[str] = (),
    audience: str = "",
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> Union[list[Union[object, TokenError]], TokenError]:
    """Decrypt up to 32 tokens in one DecryptBatch call.

    Returns one DecryptResponse or TokenError per token, in order, or a single
    TokenError when jwed rejects the whole call, as it does for more than 32
    tokens. Raises grpc.RpcError like decrypt().
    """
    messages, _ = load_protos()
    stub = _stub(channel_or_stub)
    request = messages.DecryptBatchRequest(requests=[_request(token, scopes, audience) for token in tokens])
    try:
        response = stub.DecryptBatch(request, timeout=timeout)
    except grpc.RpcError as error:
        rejection = rejection_from_error(error)
        if rejection is None:
            raise
        return rejection

    results: list[Union[object, TokenError]] = []
    for result in response.results:
        if result.WhichOneof("result") == "claims":
            results.append(result.claims)
        else:
            results.append(
                TokenError(
                    code=_STATUS_CODES.get(result.error.code, grpc.StatusCode.UNKNOWN),
                    message=result.error.message,
                    reason=result.error.reason,
                    metadata=dict(result.error.metadata),
                )
            )
    return results


def _one_line(text: str) -> str:
    # JSON strings cannot contain a raw CR or LF, so any CR or LF is
    # whitespace between JSON values and a space can replace it.
    return text.replace("\r", " ").replace("\n", " ")


class _ArgumentParser(argparse.ArgumentParser):
    """An argument parser that exits 1 on a usage error, because argparse's 2 means a rejection here."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_FAILED, f"{self.prog}: error: {message}\n")


def _parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = _ArgumentParser(
        description="Decrypt JWE tokens through a running jwed server over its Unix socket.",
        epilog="Exit status: 0 accepted, 2 rejected by jwed, 1 any other failure.",
    )
    parser.add_argument(
        "token",
        nargs="?",
        default="-",
        help="compact JWE token, or - (the default) to read it from standard input",
    )
    parser.add_argument(
        "--socket",
        default=DEFAULT_SOCKET,
        help=f"jwed's Unix socket path (default: {DEFAULT_SOCKET})",
    )
    parser.add_argument(
        "--scope",
        action="append",
        default=[],
        dest="scopes",
        metavar="SCOPE",
        help="scope the token must carry (repeat the option for several scopes)",
    )
    parser.add_argument(
        "--audience",
        default="",
        help="audience the token must be issued for (default: the audiences the server configures)",
    )
    parser.add_argument(
        "--batch",
        action="store_true",
        help=f"read up to {MAX_BATCH} tokens from standard input, one per line, "
        "and send them in one DecryptBatch call",
    )
    parser.add_argument(
        "--proto-dir",
        help=f"directory containing {PROTO_FILE} "
        f"(default: ${PROTO_DIR_ENV}, then ../../proto or ./proto next to this file)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_SECONDS,
        help=f"call deadline in seconds (default: {DEFAULT_TIMEOUT_SECONDS})",
    )
    return parser.parse_args(argv)


class InputError(Exception):
    """Standard input could not be used as tokens."""


def _read_stdin() -> str:
    data = sys.stdin.buffer.read(MAX_INPUT_BYTES + 1)
    if len(data) > MAX_INPUT_BYTES:
        raise InputError(f"standard input is larger than {MAX_INPUT_BYTES} bytes; send at most {MAX_BATCH} tokens")
    # Tokens are ASCII. Other bytes are replaced, and jwed rejects the token as TOKEN_INVALID.
    return data.decode("utf-8", errors="replace")


def _print_response(response: object) -> None:
    print(f"subject: {response.subject}")
    print(f"scopes: {' '.join(response.scopes)}")
    print(f"claims: {_one_line(response.claims_json)}")


def _run_single(channel: grpc.Channel, arguments: argparse.Namespace) -> int:
    token = (_read_stdin() if arguments.token == "-" else arguments.token).strip()
    if not token:
        print("jwed_client: no token given; pass it as an argument or on standard input", file=sys.stderr)
        return EXIT_FAILED

    result = decrypt(channel, token, arguments.scopes, arguments.audience, arguments.timeout)
    if isinstance(result, TokenError):
        print(result.describe())
        return EXIT_REJECTED
    _print_response(result)
    return EXIT_OK


def _run_batch(channel: grpc.Channel, arguments: argparse.Namespace) -> int:
    if arguments.token != "-":
        print(
            "jwed_client: --batch reads tokens from standard input only; remove the TOKEN argument",
            file=sys.stderr,
        )
        return EXIT_FAILED
    tokens = [line.strip() for line in _read_stdin().splitlines() if line.strip()]
    if not tokens:
        print("jwed_client: no tokens on standard input; write one token per line", file=sys.stderr)
        return EXIT_FAILED

    # More than 32 tokens are still sent, so that jwed's own REQUEST_INVALID
    # rejection shows.
    results = decrypt_batch(channel, tokens, arguments.scopes, arguments.audience, arguments.timeout)
    if isinstance(results, TokenError):
        print(results.describe())
        return EXIT_REJECTED

    status = EXIT_OK
    for number, result in enumerate(results, start=1):
        if isinstance(result, TokenError):
            print(f"{number}: {result.describe()}")
            status = EXIT_REJECTED
        else:
            subject = shlex.quote(result.subject)
            scopes = shlex.quote(" ".join(result.scopes))
            print(f"{number}: ok subject={subject} scopes={scopes} claims={_one_line(result.claims_json)}")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line client and return its exit status."""
    arguments = _parse_arguments(argv)
    try:
        load_protos(arguments.proto_dir)
    except ProtoError as error:
        print(f"jwed_client: {error}", file=sys.stderr)
        return EXIT_FAILED

    if not Path(arguments.socket).exists():
        print(
            f"jwed_client: socket {arguments.socket} not found; start jwed or pass its socket path with --socket",
            file=sys.stderr,
        )
        return EXIT_FAILED

    with connect(arguments.socket) as channel:
        try:
            if arguments.batch:
                return _run_batch(channel, arguments)
            return _run_single(channel, arguments)
        except InputError as error:
            print(f"jwed_client: {error}", file=sys.stderr)
            return EXIT_FAILED
        except grpc.RpcError as error:
            print(
                f"jwed_client: call to {arguments.socket} failed: {error.code().name}: {error.details()}",
                file=sys.stderr,
            )
            return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
