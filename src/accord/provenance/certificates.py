"""The X.509 chain that signs C2PA manifests: a self-signed development chain, or the operator's own.

C2PA signs with an X.509 certificate, not with the operator's Ed25519 key. With nothing
configured, :func:`ensure_dev_chain` makes (once) a development chain under
``ACCORD_HOME/keys/c2pa/``: a root CA and an ES256 (P-256) end-entity certificate carrying what
C2PA asks of a signing certificate (``digitalSignature`` key usage, the ``emailProtection``
extended key usage, not a CA). Manifests it signs validate, but no verifier trusts the root,
so they read as "signer not on a trust list".

An operator with a CA-issued certificate plugs it in with two environment variables (both or
neither): ``ACCORD_C2PA_CERT_CHAIN`` (a PEM file: the signing certificate first, then its
intermediates) and ``ACCORD_C2PA_PRIVATE_KEY`` (the PEM private key of the signing certificate).
``ACCORD_C2PA_TSA_URL`` optionally names an RFC 3161 time-stamp authority to call when signing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from accord.errors import NotFound, ValidationError
from accord.signing import keys_dir
from accord.timeutil import utcnow

ENV_CERT_CHAIN = "ACCORD_C2PA_CERT_CHAIN"
ENV_PRIVATE_KEY = "ACCORD_C2PA_PRIVATE_KEY"
ENV_TSA_URL = "ACCORD_C2PA_TSA_URL"

CHAIN_NAME = "chain.pem"
KEY_NAME = "signing-key.pem"
ROOT_NAME = "root-ca.pem"

DEV_COMMON_NAME = "Accord development operator"
DEV_ROOT_COMMON_NAME = "Accord development root CA"
DEV_ORGANIZATION = "Accord development operator (not for distribution)"
DEV_LEAF_DAYS = 365
DEV_ROOT_DAYS = 5 * 365
# a dev chain this close to expiry is replaced rather than used to sign
DEV_RENEW_BEFORE = timedelta(days=1)
# start validity a little in the past so that a verifier whose clock lags still accepts it
CLOCK_SKEW = timedelta(minutes=5)


@dataclass(frozen=True)
class CertChain:
    """A certificate chain and private key that can sign C2PA manifests.

    Attributes:
        chain_pem: the signing (end-entity) certificate first, then its issuers, PEM.
        private_key_pem: the signing certificate's private key, PEM (PKCS#8).
        algorithm: the C2PA signing algorithm for that key: ``es256``, ``es384``, ``es512``,
            ``ps256`` or ``ed25519``.
        source: ``development`` (self-signed, made by :func:`ensure_dev_chain`) or
            ``operator`` (named by ``ACCORD_C2PA_CERT_CHAIN`` / ``ACCORD_C2PA_PRIVATE_KEY``).
        chain_path: the file the chain was read from.
        tsa_url: an RFC 3161 time-stamp authority to call when signing, or ``None``.
    """

    chain_pem: bytes
    private_key_pem: bytes
    algorithm: str
    source: str
    chain_path: Path
    tsa_url: str | None = None

    @property
    def certificates(self) -> tuple[x509.Certificate, ...]:
        return tuple(x509.load_pem_x509_certificates(self.chain_pem))

    @property
    def signing_certificate(self) -> x509.Certificate:
        return self.certificates[0]

    @property
    def common_name(self) -> str:
        names = self.signing_certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(names[0].value) if names else ""

    @property
    def not_valid_after(self) -> datetime:
        return self.signing_certificate.not_valid_after_utc


def c2pa_dir(home: Path) -> Path:
    return keys_dir(home) / "c2pa"


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` with mode 0600, atomically."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _write_public(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, DEV_ORGANIZATION),
        ]
    )


def _key_usage(*, digital_signature: bool, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def make_dev_chain(now: datetime | None = None) -> tuple[bytes, bytes, bytes]:
    """A fresh development chain: ``(chain_pem, signing_key_pem, root_pem)``.

    The root's private key is used once, to sign the end-entity certificate, and then dropped:
    renewing the chain makes a new root.
    """
    now = now or utcnow()
    start = now - CLOCK_SKEW
    root_key = ec.generate_private_key(ec.SECP256R1())
    root_name = _name(DEV_ROOT_COMMON_NAME)
    root = (
        x509.CertificateBuilder()
        .subject_name(root_name)
        .issuer_name(root_name)
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + timedelta(days=DEV_ROOT_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(digital_signature=False, cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(DEV_COMMON_NAME))
        .issuer_name(root_name)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(now + timedelta(days=DEV_LEAF_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(digital_signature=True, cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    root_pem = root.public_bytes(pem)
    chain_pem = leaf.public_bytes(pem) + root_pem
    key_pem = leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return chain_pem, key_pem, root_pem


def _algorithm_for(key: object, where: str) -> str:
    """The C2PA signing algorithm for a private key."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        by_curve = {"secp256r1": "es256", "secp384r1": "es384", "secp521r1": "es512"}
        if key.curve.name in by_curve:
            return by_curve[key.curve.name]
        msg = f"C2PA private key: {where} is on curve {key.curve.name}; expected P-256, P-384 or P-521"
        raise ValidationError(msg, field="private_key", value=key.curve.name)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    if isinstance(key, rsa.RSAPrivateKey):
        return "ps256"  # C2PA allows RSA only with PSS padding
    msg = f"C2PA private key: {where} is a {type(key).__name__}; expected an EC (P-256/384/521), Ed25519 or RSA key"
    raise ValidationError(msg, field="private_key", value=type(key).__name__)


def _chain_from(chain_path: Path, key_path: Path, *, source: str, tsa_url: str | None) -> CertChain:
    """Read and check a chain and its key: the key must match the first certificate."""
    for label, path in (("certificate chain", chain_path), ("private key", key_path)):
        if not path.is_file():
            msg = f"C2PA {label}: no file at {path}"
            raise NotFound(msg)
    chain_pem, key_pem = chain_path.read_bytes(), key_path.read_bytes()
    try:
        certs = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        certs = []
    if not certs:
        msg = f"C2PA certificate chain: {chain_path} holds no PEM certificate; expected the signing certificate first"
        raise ValidationError(msg, field="cert_chain", value=str(chain_path))
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as err:
        msg = f"C2PA private key: {key_path} is not an unencrypted PEM private key ({err})"
        raise ValidationError(msg, field="private_key", value=str(key_path)) from None
    algorithm = _algorithm_for(key, str(key_path))
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if key.public_key().public_bytes(der, public) != certs[0].public_key().public_bytes(der, public):
        msg = f"C2PA chain: the key in {key_path} does not belong to the first certificate in {chain_path}"
        raise ValidationError(msg, field="private_key", value=str(key_path))
    return CertChain(chain_pem, key_pem, algorithm, source, chain_path, tsa_url)


def _operator_paths(environ: Mapping[str, str]) -> tuple[Path, Path] | None:
    chain, key = environ.get(ENV_CERT_CHAIN, "").strip(), environ.get(ENV_PRIVATE_KEY, "").strip()
    if not chain and not key:
        return None
    if not chain or not key:
        missing = ENV_CERT_CHAIN if not chain else ENV_PRIVATE_KEY
        msg = f"{missing}: not set; set both {ENV_CERT_CHAIN} and {ENV_PRIVATE_KEY}, or neither for the dev chain"
        raise ValidationError(msg, field=missing, value="")
    return Path(chain).expanduser(), Path(key).expanduser()


def _tsa_url(environ: Mapping[str, str]) -> str | None:
    return environ.get(ENV_TSA_URL, "").strip() or None


def load_chain(home: Path, environ: Mapping[str, str] | None = None) -> CertChain:
    """The chain to sign with: the operator's if the environment names one, else the development chain.

    Raises:
        NotFound: no operator chain is configured and no development chain exists yet.
        ValidationError: a configured chain is incomplete, unreadable, or its key does not match.
    """
    env = os.environ if environ is None else environ
    operator = _operator_paths(env)
    if operator is not None:
        return _chain_from(*operator, source="operator", tsa_url=_tsa_url(env))
    folder = c2pa_dir(home)
    if not (folder / CHAIN_NAME).is_file():
        msg = f"C2PA certificate chain: none at {folder / CHAIN_NAME}; run `accord init` or set {ENV_CERT_CHAIN}"
        raise NotFound(msg)
    return _chain_from(folder / CHAIN_NAME, folder / KEY_NAME, source="development", tsa_url=_tsa_url(env))


def ensure_dev_chain(home: Path, environ: Mapping[str, str] | None = None) -> CertChain:
    """The chain to sign with, making the development chain under ``home/keys/c2pa/`` if needed.

    When ``ACCORD_C2PA_CERT_CHAIN`` and ``ACCORD_C2PA_PRIVATE_KEY`` are set, the operator's chain
    is returned and nothing is written. Otherwise the development chain is made once, and made
    again only when missing, unreadable or within a day of expiry.
    """
    env = os.environ if environ is None else environ
    if _operator_paths(env) is not None:
        return load_chain(home, env)
    folder = c2pa_dir(home)
    if (folder / CHAIN_NAME).is_file() and (folder / KEY_NAME).is_file():
        try:
            chain = load_chain(home, env)
        except ValidationError:
            chain = None  # a damaged dev chain is replaced, never repaired
        if chain is not None and chain.not_valid_after - utcnow() > DEV_RENEW_BEFORE:
            return chain
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    chain_pem, key_pem, root_pem = make_dev_chain()
    _write_private(folder / KEY_NAME, key_pem)
    _write_public(folder / CHAIN_NAME, chain_pem)
    _write_public(folder / ROOT_NAME, root_pem)
    return load_chain(home, env)
