"""Connection settings: precedence, validation, secrecy, and the organization."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from enos_pulumi.enos.errors import ConfigurationError, EnosError
from enos_pulumi.enos.settings import Settings, resolve_org_id, resolve_settings

GATEWAY = "https://apim.example.com"
SECRET = "s3cr3t-app-secret-value"

BASE_ENV = {
    "ENOS_API_GATEWAY": GATEWAY,
    "ENOS_ACCESS_KEY": "env-access-key",
    "ENOS_SECRET_KEY": SECRET,
}


def settings_from_env(**extra: str) -> Settings:
    return resolve_settings(environ={**BASE_ENV, **extra})


# -- precedence ----------------------------------------------------------------------------------------------

# field name, stack config key, environment variable, three distinct valid raw values, attribute values
PRECEDENCE_CASES = [
    ("api_gateway", "enos:apiGateway", "ENOS_API_GATEWAY",
     ("https://explicit.example.com", "https://config.example.com", "https://env.example.com"),
     ("https://explicit.example.com", "https://config.example.com", "https://env.example.com")),
    ("access_key", "enos:accessKey", "ENOS_ACCESS_KEY",
     ("ak-explicit", "ak-config", "ak-env"), ("ak-explicit", "ak-config", "ak-env")),
    ("secret_key", "enos:secretKey", "ENOS_SECRET_KEY",
     ("sk-explicit", "sk-config", "sk-env"), ("sk-explicit", "sk-config", "sk-env")),
    ("parallel_requests", "enos:parallelRequests", "ENOS_PARALLEL_REQUESTS",
     ("2", "3", "5"), (2, 3, 5)),
    ("max_pairs_per_request", "enos:maxPairsPerRequest", "ENOS_MAX_PAIRS_PER_REQUEST",
     ("1000", "2000", "3000"), (1000, 2000, 3000)),
    ("retry_deadline", "enos:retryDeadlineSeconds", "ENOS_RETRY_DEADLINE_SECONDS",
     ("10", "20.5", "30"), (10.0, 20.5, 30.0)),
    ("read_timeout", "enos:readTimeoutSeconds", "ENOS_READ_TIMEOUT_SECONDS",
     ("5", "6", "7.5"), (5.0, 6.0, 7.5)),
    ("connect_timeout", "enos:connectTimeoutSeconds", "ENOS_CONNECT_TIMEOUT_SECONDS",
     ("1", "2", "3"), (1.0, 2.0, 3.0)),
    ("attempt_timeout", "enos:attemptTimeoutSeconds", "ENOS_ATTEMPT_TIMEOUT_SECONDS",
     ("5", "6", "7.5"), (5.0, 6.0, 7.5)),
    ("reset_timeout", "enos:resetTimeoutSeconds", "ENOS_RESET_TIMEOUT_SECONDS",
     ("60", "600", "6000"), (60.0, 600.0, 6000.0)),
    ("operation_timeout", "enos:operationTimeoutSeconds", "ENOS_OPERATION_TIMEOUT_SECONDS",
     ("30", "60", "90"), (30.0, 60.0, 90.0)),
    ("auth_scheme", "enos:authScheme", "ENOS_AUTH_SCHEME",
     ("bearer", "apim-signature", "Bearer"), ("bearer", "apim-signature", "bearer")),
]  # fmt: skip


def _ids(case: tuple[Any, ...]) -> str:
    return str(case[0])


@pytest.mark.parametrize("case", PRECEDENCE_CASES, ids=_ids)
def test_explicit_beats_config_beats_environment(case: tuple[Any, ...]) -> None:
    name, config_key, env_var, (raw_explicit, raw_config, raw_env), (v_explicit, v_config, v_env) = case
    environ = {**BASE_ENV, env_var: raw_env}
    assert getattr(resolve_settings(environ=environ), name) == v_env
    config = {config_key: raw_config}
    assert getattr(resolve_settings(config=config, environ=environ), name) == v_config
    explicit = {name: raw_explicit}
    assert getattr(resolve_settings(explicit=explicit, config=config, environ=environ), name) == v_explicit


@pytest.mark.parametrize("case", PRECEDENCE_CASES, ids=_ids)
def test_an_empty_value_does_not_hide_a_lower_source(case: tuple[Any, ...]) -> None:
    name, config_key, env_var, (_, _, raw_env), (_, _, v_env) = case
    environ = {**BASE_ENV, env_var: raw_env}
    resolved = resolve_settings(explicit={name: ""}, config={config_key: "   "}, environ=environ)
    assert getattr(resolved, name) == v_env


def test_defaults_apply_when_no_source_sets_a_number() -> None:
    s = settings_from_env()
    assert s.parallel_requests == 4
    assert s.max_pairs_per_request == 100_000
    assert s.retry_deadline == 120.0
    assert s.read_timeout == 60.0
    assert s.connect_timeout == 10.0


def test_string_values_are_stripped() -> None:
    s = resolve_settings(
        config={"enos:apiGateway": f"  {GATEWAY}  ", "enos:accessKey": " ak ", "enos:secretKey": " sk\n"}
    )
    assert (s.api_gateway, s.access_key, s.secret_key) == (GATEWAY, "ak", "sk")


def test_resolution_reads_only_the_mappings_given(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigurationError):
        resolve_settings(environ={})


# -- missing settings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_var", "config_key", "command"),
    [
        ("ENOS_API_GATEWAY", "enos:apiGateway", "pulumi config set enos:apiGateway"),
        ("ENOS_ACCESS_KEY", "enos:accessKey", "pulumi config set enos:accessKey"),
        ("ENOS_SECRET_KEY", "enos:secretKey", "pulumi config set --secret enos:secretKey"),
    ],
)
def test_a_missing_setting_names_the_config_key_and_the_variable(
    env_var: str, config_key: str, command: str
) -> None:
    environ = {k: v for k, v in BASE_ENV.items() if k != env_var}
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(environ=environ)
    text = str(info.value)
    assert config_key in text
    assert env_var in text
    assert command in text
    assert isinstance(info.value, EnosError)


def test_nothing_set_at_all_fails_on_the_gateway_first() -> None:
    with pytest.raises(ConfigurationError, match="ENOS_API_GATEWAY"):
        resolve_settings()


def test_a_non_string_credential_is_rejected_naming_its_source() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(config={"enos:accessKey": 1234}, environ=BASE_ENV)
    assert "stack config enos:accessKey" in str(info.value)
    assert "string" in str(info.value)


# -- the gateway URL -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("https://apim.example.com", "https://apim.example.com"),
        ("https://apim.example.com/", "https://apim.example.com"),
        ("https://apim.example.com:8443/base//", "https://apim.example.com:8443/base"),
        ("HTTPS://apim.example.com/", "https://apim.example.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("http://127.45.6.7:9000", "http://127.45.6.7:9000"),
        ("http://[::1]:8080/", "http://[::1]:8080"),
        ("http://localhost:8080", "http://localhost:8080"),
        ("http://LOCALHOST", "http://localhost"),
        ("https://APIM.Example.com:443/", "https://apim.example.com"),
        ("HTTPS://apim.example.com:443/Base/Path/", "https://apim.example.com/Base/Path"),
        ("https://apim.example.com:80", "https://apim.example.com:80"),  # not https's default port
        ("http://127.0.0.1:80/", "http://127.0.0.1"),
        ("http://[::1]:80", "http://[::1]"),
    ],
)
def test_gateway_urls_accepted_and_normalized(given: str, normalized: str) -> None:
    assert settings_from_env(ENOS_API_GATEWAY=given).api_gateway == normalized


def test_one_gateway_spelt_two_ways_is_one_gateway_for_tokens_pauses_and_guardian_locks() -> None:
    """Two providers that spell one gateway differently pause the same pipeline: the pause coordinator
    and the guardian lock are keyed by the gateway, so they must see one key."""
    from enos_pulumi.enos.model import StageTarget
    from enos_pulumi.guardian_lock import _key

    a = settings_from_env(ENOS_API_GATEWAY="https://apim.example.com")
    b = settings_from_env(ENOS_API_GATEWAY="https://APIM.example.com:443/")
    assert a.api_gateway == b.api_gateway and a.cache_key == b.cache_key
    target = StageTarget("o1", "p1", "FixedTimeWindowAggregator_1")
    assert _key(a.api_gateway, target) == _key(b.api_gateway, target)


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "http://apim.example.com:80/",
        "http://10.0.0.1:8080",
        "http://192.168.1.10",
        "http://localhost.example.com",
        "http://127.0.0.1.nip.io",
        "http://[2001:db8::1]",
        "http://0.0.0.0:8080",
    ],
)
def test_plain_http_is_refused_for_non_loopback_hosts_and_says_why(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        settings_from_env(ENOS_API_GATEWAY=url)
    text = str(info.value)
    assert "https://" in text
    assert "unencrypted" in text
    assert "ENOS_API_GATEWAY" in text


@pytest.mark.parametrize(
    "url",
    [
        "https://user:hunter2pass@apim.example.com",
        "https://user@apim.example.com",
        "https://apim.example.com/?debug=1",
        "https://apim.example.com/#frag",
        "http://user:hunter2pass@127.0.0.1:8080",
        "htps://user:hunter2pass@apim.example.com",
    ],
)
def test_urls_with_credentials_query_or_fragment_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(config={"enos:apiGateway": url}, environ=BASE_ENV)
    text = str(info.value)
    assert "stack config enos:apiGateway" in text
    # A password in the URL must not be repeated in the error shown by `pulumi up`.
    assert "hunter2pass" not in text


@pytest.mark.parametrize(
    "url",
    [
        "https//ak:hunter2pass@apim.example.com",
        "https:/ak:hunter2pass@apim.example.com",
        "ak:hunter2pass@apim.example.com",
        "https://ak:hunter2pass@apim.example.com",
        "https://ak:hunter2/pass@apim.example.com",
        "https://ak:hunter2pass@@apim.example.com",
        "ak:hunter2pass\n@apim.example.com",
    ],
)
def test_a_mistyped_url_with_a_password_never_echoes_it(url: str) -> None:
    # However the URL is mistyped, what precedes an @ may be a password: it never reaches the error.
    with pytest.raises(ConfigurationError) as info:
        settings_from_env(ENOS_API_GATEWAY=url)
    text = str(info.value)
    assert "environment variable ENOS_API_GATEWAY" in text
    assert "hunter2" not in text and "pass" not in text.split("got")[-1]
    assert "<hidden>@" in text


@pytest.mark.parametrize(
    "url",
    [
        "apim.example.com",
        "ftp://apim.example.com",
        "https://",
        "https://apim.example.com:99999",
        "https:/x",
        "http://[::1",
        "https://[not-an-ip]",
        "https://apim.example.com:0",
        "https://apim example.com",
        "https://apim.example.com\r\nX-Injected: 1",
    ],
)
def test_malformed_gateway_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="ENOS_API_GATEWAY"):
        settings_from_env(ENOS_API_GATEWAY=url)


def test_an_unknown_auth_scheme_names_the_key_and_the_choices() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(config={"enos:authScheme": "hmac"}, environ=BASE_ENV)
    text = str(info.value)
    assert "stack config enos:authScheme" in text
    assert "apim-signature, bearer" in text
    assert "'hmac'" in text


def test_the_default_auth_scheme_is_the_apim_signature() -> None:
    assert resolve_settings(environ=BASE_ENV).auth_scheme == "apim-signature"


def test_a_ca_bundle_must_exist(tmp_path: Path) -> None:
    bundle = tmp_path / "corp-ca.pem"
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(config={"enos:caBundle": str(bundle)}, environ=BASE_ENV)
    assert "stack config enos:caBundle" in str(info.value)
    assert "does not exist" in str(info.value)
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    assert resolve_settings(environ={**BASE_ENV, "ENOS_CA_BUNDLE": str(bundle)}).ca_bundle == str(bundle)


# -- numbers -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env_var", "raw", "attribute", "expected"),
    [
        ("ENOS_PARALLEL_REQUESTS", "1", "parallel_requests", 1),
        ("ENOS_PARALLEL_REQUESTS", "32", "parallel_requests", 32),
        ("ENOS_PARALLEL_REQUESTS", " 8 ", "parallel_requests", 8),
        ("ENOS_MAX_PAIRS_PER_REQUEST", "100000", "max_pairs_per_request", 100_000),
        ("ENOS_MAX_PAIRS_PER_REQUEST", "1", "max_pairs_per_request", 1),
        ("ENOS_RETRY_DEADLINE_SECONDS", "0", "retry_deadline", 0.0),
        ("ENOS_RETRY_DEADLINE_SECONDS", "2.5", "retry_deadline", 2.5),
        ("ENOS_READ_TIMEOUT_SECONDS", "600", "read_timeout", 600.0),
    ],
)
def test_numbers_are_parsed_from_strings(env_var: str, raw: str, attribute: str, expected: float) -> None:
    value = getattr(settings_from_env(**{env_var: raw}), attribute)
    assert value == expected
    assert type(value) is type(expected)


def test_numbers_may_come_as_numbers_from_explicit_values() -> None:
    s = resolve_settings(explicit={"parallel_requests": 2, "retry_deadline": 1.5}, environ=BASE_ENV)
    assert s.parallel_requests == 2
    assert s.retry_deadline == 1.5


@pytest.mark.parametrize(
    ("config_key", "raw"),
    [
        ("enos:parallelRequests", "abc"),
        ("enos:parallelRequests", "0"),
        ("enos:parallelRequests", "33"),
        ("enos:parallelRequests", "2.5"),
        ("enos:parallelRequests", "nan"),
        ("enos:maxPairsPerRequest", "100001"),
        ("enos:maxPairsPerRequest", "0"),
        ("enos:maxPairsPerRequest", "-5"),
        ("enos:maxPairsPerRequest", "inf"),
        ("enos:retryDeadlineSeconds", "-1"),
        ("enos:retryDeadlineSeconds", "3601"),
        ("enos:retryDeadlineSeconds", "soon"),
        ("enos:readTimeoutSeconds", "0.05"),
        ("enos:readTimeoutSeconds", "601"),
        ("enos:attemptTimeoutSeconds", "0"),
        ("enos:attemptTimeoutSeconds", "3601"),
        ("enos:resetTimeoutSeconds", "0.5"),
        ("enos:operationTimeoutSeconds", "-3"),
        ("enos:connectTimeoutSeconds", "1e400"),
        ("enos:readTimeoutSeconds", "[]"),
    ],
)
def test_bad_numbers_are_rejected_naming_the_source(config_key: str, raw: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(config={config_key: raw}, environ=BASE_ENV)
    text = str(info.value)
    assert f"stack config {config_key}" in text
    assert repr(raw) in text


def test_a_bad_number_from_the_environment_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="environment variable ENOS_PARALLEL_REQUESTS"):
        settings_from_env(ENOS_PARALLEL_REQUESTS="many")


def test_a_bad_number_from_an_explicit_value_names_the_argument() -> None:
    with pytest.raises(ConfigurationError, match="argument max_pairs_per_request"):
        resolve_settings(explicit={"max_pairs_per_request": 200_000}, environ=BASE_ENV)


def test_a_valid_config_value_shadows_a_bad_environment_value() -> None:
    s = resolve_settings(
        config={"enos:parallelRequests": "6"}, environ={**BASE_ENV, "ENOS_PARALLEL_REQUESTS": "x"}
    )
    assert s.parallel_requests == 6


def test_the_time_bounds_read_as_one_value_that_follows_the_settings() -> None:
    from enos_pulumi.enos.timeouts import Timeouts

    s = settings_from_env(
        ENOS_CONNECT_TIMEOUT_SECONDS="3",
        ENOS_READ_TIMEOUT_SECONDS="90",
        ENOS_ATTEMPT_TIMEOUT_SECONDS="30",
        ENOS_RETRY_DEADLINE_SECONDS="45",
        ENOS_RESET_TIMEOUT_SECONDS="600",
        ENOS_OPERATION_TIMEOUT_SECONDS="120",
    )
    t = s.timeouts
    assert t == Timeouts(connect=3, read=90, attempt=30, retry_deadline=45, reset=600, operation=120)
    assert t.socket == (3, 30)  # a read may not wait past the attempt it is part of
    assert settings_from_env().timeouts == Timeouts()  # one set of defaults
    bound = t.reset_deadline(100.0)
    assert (bound.at, bound.seconds, bound.setting) == (700.0, 600, "enos:resetTimeoutSeconds")
    bound = t.operation_deadline(100.0)
    assert (bound.at, bound.seconds, bound.setting) == (220.0, 120, "enos:operationTimeoutSeconds")


# -- secrecy -------------------------------------------------------------------------------------------------


def test_repr_and_str_never_show_the_secret() -> None:
    s = settings_from_env()
    for text in (repr(s), str(s), f"{s}", f"{s!r}", repr([s]), repr({"s": s})):
        assert SECRET not in text
        assert "env-access-key" in text
    assert "<hidden>" in repr(s)
    assert s.secret_key == SECRET


def test_settings_are_frozen_and_keyed_by_gateway_and_access_key() -> None:
    s = settings_from_env()
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.secret_key = "x"  # type: ignore[misc]
    assert s.cache_key == (GATEWAY, "env-access-key")
    rotated = dataclasses.replace(s, secret_key="rotated")
    assert rotated.cache_key == s.cache_key


def test_a_configuration_error_never_contains_the_secret() -> None:
    environ = {**BASE_ENV, "ENOS_API_GATEWAY": "http://example.com"}
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(environ=environ)
    assert SECRET not in str(info.value)


# -- organization --------------------------------------------------------------------------------------------


def test_org_id_precedence() -> None:
    config = {"enos:orgId": "o-config"}
    environ = {"ENOS_ORG_ID": "o-env"}
    assert resolve_org_id("o-explicit", config, environ) == "o-explicit"
    assert resolve_org_id(None, config, environ) == "o-config"
    assert resolve_org_id(None, None, environ) == "o-env"
    assert resolve_org_id("", {"enos:orgId": "  "}, environ) == "o-env"
    assert resolve_org_id("  o-padded ", None, None) == "o-padded"


def test_a_non_string_org_id_is_refused_rather_than_falling_back() -> None:
    # Falling back to the config/env org would silently target another organization.
    with pytest.raises(ConfigurationError, match="org_id must be a string"):
        resolve_org_id(123, {"enos:orgId": "o-config"}, {})  # type: ignore[arg-type]


@pytest.mark.parametrize("explicit", [None, "", "   "])
def test_a_missing_org_id_names_every_way_to_set_it(explicit: str | None) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_org_id(explicit, {"enos:orgId": ""}, {})
    text = str(info.value)
    assert "org_id" in text
    assert "enos:orgId" in text
    assert "ENOS_ORG_ID" in text


@pytest.mark.parametrize("name", ["ENOS_SECRET_KEY", "ENOS_ACCESS_KEY"])
def test_a_key_with_undecodable_bytes_is_refused_without_showing_it(name: str) -> None:
    # os.environ holds bytes it cannot decode as lone surrogates; encoding them later would raise a
    # UnicodeEncodeError whose text (and pickle) carries the whole key.
    env = {**BASE_ENV, name: "sk-sim-\udce9-s3cr3t"}
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(environ=env)
    assert f"environment variable {name}" in str(info.value)
    assert "s3cr3t" not in str(info.value) and "not shown" in str(info.value)


def test_the_environment_is_read_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in BASE_ENV.items():
        monkeypatch.setenv(name, value)
    assert resolve_settings().api_gateway == BASE_ENV["ENOS_API_GATEWAY"]


def test_an_unknown_explicit_setting_is_an_error_naming_the_valid_ones() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_settings(explicit={"retry_deadlin": 5, "parallelRequests": 3}, environ=BASE_ENV)
    text = str(info.value)
    assert "'parallelRequests', 'retry_deadlin'" in text and "retry_deadline" in text


def test_settings_are_never_pickled() -> None:
    import pickle

    settings = resolve_settings(environ=BASE_ENV)
    with pytest.raises(TypeError, match="never pickled"):
        pickle.dumps(settings)


# -- what a preview can tell: config_problems ----------------------------------------------------------------


def test_config_problems_name_an_unknown_enos_key_and_the_nearest_known_one() -> None:
    from enos_pulumi.enos.config_check import config_problems

    config = {
        "enos:apiGateWay": "https://apim.example.com",
        "enos:operationTimeout": "60",
        "enos:orgId": "o1",  # read by the program, known
        "enos:frobnicate": "x",
        "aws:region": "eu-west-1",  # other namespaces are not ours
        "myproject:enos:thing": "y",
    }
    problems = config_problems(config, {})
    assert len(problems) == 3
    assert (
        "stack config enos:apiGateWay is not an enos-pulumi setting: did you mean enos:apiGateway?"
        in problems[0]
    )
    assert "enos:frobnicate is not an enos-pulumi setting: Remove it" in problems[1]
    assert "did you mean enos:operationTimeoutSeconds?" in problems[2]


@pytest.mark.parametrize(
    ("config", "environ", "expected"),
    [
        ({}, {}, []),  # nothing set: fine at preview (a pull-request job has no secret)
        ({"enos:apiGateway": "https://apim.example.com"}, {}, []),
        ({"enos:apiGateway": "http://127.0.0.1:8765"}, {}, []),  # loopback: the simulator
        (
            {"enos:apiGateway": "http://apim.example.com"},
            {},
            ["stack config enos:apiGateway uses plain http://"],
        ),
        (
            {},
            {"ENOS_API_GATEWAY": "ftp://apim.example.com"},
            ["environment variable ENOS_API_GATEWAY must be"],
        ),
        ({"enos:apiGateway": "https://apim.example.com"}, {"ENOS_API_GATEWAY": "http://x.example"}, []),
    ],
)
def test_config_problems_check_the_gateway_the_reset_would_use(
    config: dict[str, str], environ: dict[str, str], expected: list[str]
) -> None:
    from enos_pulumi.enos.config_check import config_problems

    problems = config_problems(config, environ)
    assert len(problems) == len(expected)
    for problem, text in zip(problems, expected, strict=True):
        assert text in problem


@pytest.mark.parametrize(
    ("config_key", "raw"),
    [
        ("enos:operationTimeoutSeconds", "five"),
        ("enos:authScheme", "oauth2"),
        ("enos:parallelRequests", "0"),
        ("enos:resetTimeoutSeconds", "0.5"),
        ("enos:maxPairsPerRequest", "100001"),
        ("enos:retryDeadlineSeconds", "-1"),
        ("enos:readTimeoutSeconds", "nan"),
        ("enos:connectTimeoutSeconds", "0"),
        ("enos:attemptTimeoutSeconds", "1e9"),
        ("enos:apiGateway", "http://apim.example.com"),
        ("enos:accessKey", 5.0),
        ("enos:caBundle", 5.0),
    ],
)
def test_config_problems_are_what_up_would_say_and_need_no_credentials(config_key: str, raw: Any) -> None:
    """Preview applies the rules `pulumi up` applies (the same text), to every setting given."""
    from enos_pulumi.enos.config_check import config_problems

    with pytest.raises(ConfigurationError) as at_up:
        resolve_settings(None, {config_key: raw}, BASE_ENV)
    assert config_problems({config_key: raw}, {}) == [str(at_up.value)]


def test_config_problems_leave_missing_credentials_and_the_ca_bundle_file_to_up() -> None:
    from enos_pulumi.enos.config_check import config_problems
    from enos_pulumi.enos.settings import setting_problems

    assert config_problems({"enos:caBundle": "/nonexistent/ca.pem"}, {}) == []
    assert config_problems({}, {"ENOS_PARALLEL_REQUESTS": "4", "ENOS_AUTH_SCHEME": "Bearer"}) == []
    # The value of a setting given as a secret is never quoted.
    ((key, problem),) = setting_problems({"enos:authScheme": "qzjx"}, {}, secret_keys={"enos:authScheme"})
    assert key == "enos:authScheme" and problem.endswith("got [secret]") and "qzjx" not in problem
